"""``distribution``: a histogram on public bins and quantiles with a rough range.

Quantiles come from the exponential mechanism, which has no additive accuracy: they are
published with a range read off the released histogram, or not at all (``quantiles``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import polars as pl

from analytics import insights
from analytics.analyses.builder import Builder, Planned, Ref, Results
from analytics.analyses.names import Name, QueryId
from analytics.analyses.values import (
    ALL,
    COUNT,
    estimate_of,
    published,
)
from analytics.vocabulary import Kind, Metric, quantile_metric
from privacy.contract import DistributionAnalysis
from privacy.dp_intervals import Estimate
from privacy.release import Noise, count_agg, quantile_agg
from privacy.results import PublishedValue

log = logging.getLogger(__name__)

#: quantile levels OpenDP calibrates well (others give useless scales)
GOOD_QUANTILES = (0.125, 0.25, 0.5, 0.75, 0.875)
QUANTILE_CANDIDATES = 201


def plan(b: Builder, a: DistributionAnalysis) -> None:
    m = a.measure
    lo, hi = b.bounds(m)
    mid = b.mid(m)
    edges = a.bins or [lo + (hi - lo) * i / 10 for i in range(11)]
    labels = [
        f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"
        for i in range(len(edges) - 1)
    ]
    x = pl.col(b.measure(m)) + mid  # null where the value is missing: in no bin
    expr: Any = pl.lit(None, dtype=pl.Int64)
    for i in reversed(range(len(labels))):
        upper_ok = x <= edges[i + 1] if i == len(labels) - 1 else x < edges[i + 1]
        expr = pl.when((x >= edges[i]) & upper_ok).then(pl.lit(i, pl.Int64)).otherwise(expr)
    bcol = Name.bins(m, edges)
    b.columns[bcol] = expr
    refs: list[Ref] = []
    hist = b.query(
        QueryId.histogram(m, edges),
        by=(bcol,),
        keys=pl.DataFrame({bcol: pl.Series(range(len(labels)), dtype=pl.Int64)}),
    )
    alphas = [q for q in a.quantiles if any(abs(q - g) < 1e-12 for g in GOOD_QUANTILES)]
    if len(alphas) < len(a.quantiles):
        log.warning(
            "distribution of %s: quantiles other than %s are skipped (OpenDP gives them "
            "useless noise scales)",
            m,
            GOOD_QUANTILES,
        )
    # the histogram gets half of the analysis' ε, the (rough) quantiles share the rest
    b.use(refs, hist, count_agg(COUNT), max(len(alphas), 1))
    icol, (ilo, ihi), step = b.centred(m)
    # candidates in the fixed-point units of the centred column (published: c·step + mid)
    cands = sorted(
        {
            round(ilo + (ihi - ilo) * i / (QUANTILE_CANDIDATES - 1))
            for i in range(QUANTILE_CANDIDATES)
        }
    )
    # quantiles of the values that are there: rows without one are left out first
    qq = (
        b.query(QueryId.present(m), present=(b.indicator(m, "present"),))
        if b.may_miss(m)
        else b.query(ALL)
    )
    for q in alphas:
        agg = quantile_agg(icol, q, cands, Name.quantile(m, q), step=step, offset=mid)
        b.use(refs, qq, agg)

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        res = results[hist]
        values: list[PublishedValue] = []
        counts: dict[int, Estimate] = {}
        for row in res.frame.iter_rows(named=True):
            est = estimate_of(res, row, COUNT, (0.0, None))
            if est is not None:
                counts[int(row[bcol])] = est
                values.append(published(Metric.HISTOGRAM, est, m, {"bin": labels[int(row[bcol])]}))
        order = {lab: i for i, lab in enumerate(labels)}
        values.sort(key=lambda v: order.get(v.group.get("bin", ""), 0))
        rows = sum(e.clipped for e in counts.values())
        if alphas:
            qres = results[qq]
            qrow = qres.frame.row(0, named=True)
            found = [
                (q, float(qrow[Name.quantile(m, q)]), qres.noise.get(Name.quantile(m, q))) for q in alphas
            ]
            values += quantiles(m, found, edges, counts, (lo, hi), rows)
        return values, insights.distribution_insights(m, values, bool(alphas))

    mech = "laplace+exponential" if alphas else "laplace"
    name = b.unique_name(f"distribution:{m}")
    b.planned_add(Planned(Kind.DISTRIBUTION, name, refs, finish, mech))


def value_at_rank(rank: float, edges: list[float], counts: list[float]) -> float:
    """The value below which ``rank`` of the histogram's rows lie (linear within a bin)."""
    total = sum(counts)
    rank = min(max(rank, 0.0), total)
    below = 0.0
    for i, c in enumerate(counts):
        if c > 0 and below + c >= rank:
            return edges[i] + (rank - below) / c * (edges[i + 1] - edges[i])
        below += c
    return edges[-1]


def quantiles(
    m: str,
    found: list[tuple[float, float, Noise | None]],
    edges: list[float],
    counts: dict[int, Estimate],
    bounds: tuple[float, float],
    rows: float,
) -> list[PublishedValue]:
    """Quantiles with a rough range in the measure's units, or none at all.

    The exponential mechanism has no additive accuracy: it may pick a candidate up to
    ``quantile_rank_error`` rows away from the true rank. Where that exceeds
    ``QUANTILE_RANK_SHARE`` of the (noisy) rows, nothing is published. Otherwise each
    quantile's range is the span of values within that rank error (plus the noise of the
    histogram's cumulative counts) of its rank, read off the released histogram: post-
    processing of DP values only, a rough guide rather than a calibrated interval.
    """
    if rows <= 0 or not found:
        return []
    errors = [insights.quantile_rank_error(n.raw_scale if n else None, q) for q, _, n in found]
    if max(errors) > insights.QUANTILE_RANK_SHARE * rows:
        return []
    binned = [counts[i].clipped if i in counts else 0.0 for i in range(len(edges) - 1)]
    hist_noise = math.sqrt(sum((e.halfwidth() or 0.0) ** 2 for e in counts.values()))
    out = []
    for (q, value, _), err in zip(found, errors, strict=True):
        v = min(max(value, bounds[0]), bounds[1])
        spread = err + hist_noise
        low = value_at_rank(q * rows - spread, edges, binned)
        high = value_at_rank(q * rows + spread, edges, binned)
        out.append(PublishedValue(quantile_metric(q), v, min(low, v), max(high, v), None, m))
    return out
