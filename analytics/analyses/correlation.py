"""``correlation``: Pearson r from DP sums (post-processing, ``analytics.correlations``),
withheld with a sentence that says what would make it estimable when the noise swamps it."""

from __future__ import annotations

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
from analytics.correlations import pearson_from_sums
from analytics.vocabulary import Kind, Metric
from privacy.contract import CorrelationAnalysis
from privacy.release import count_agg, int_sum_agg
from privacy.results import PublishedValue


def plan(b: Builder, a: CorrelationAnalysis) -> None:
    """n, Σa, Σb (shared with the summary), Σa², Σb², Σab of the centred measures. The
    second moments drive r's noise, so they get three times the weight of the others.
    When a measure may be missing, the sums run over the rows where every measure of
    the analysis is present (a query of its own, filtered row by row)."""
    ms = list(dict.fromkeys(a.measures))
    refs: list[Ref] = []
    if any(b.may_miss(m) for m in ms):
        present = tuple(b.indicator(m, "present") for m in ms)
        q = b.query(QueryId.complete(ms), present=present)
    else:
        q = b.query(ALL)
    b.use(refs, q, count_agg(COUNT), 0.5)
    half: dict[str, float] = {}
    for m in ms:
        lo, hi = b.bounds(m)
        half[m] = (hi - lo) / 2
        b.use(refs, q, b.csum(m), 0.5)
        sq, ib, step = b._fixed(Name.square(m), pl.col(b.measure(m)) ** 2, (0.0, half[m] ** 2))
        b.use(refs, q, int_sum_agg(sq, ib, Name.ss(m), step), 1.5)
    pairs = [(x, y) for i, x in enumerate(ms) for y in ms[i + 1 :]]
    for x, y in pairs:
        bound = half[x] * half[y]
        prod = pl.col(b.measure(x)) * pl.col(b.measure(y))
        xy, ib, step = b._fixed(Name.product(x, y), prod, (-bound, bound))
        b.use(refs, q, int_sum_agg(xy, ib, Name.sxy(x, y), step), 1.5)

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        res = results[q]
        row = res.frame.row(0, named=True)
        values: list[PublishedValue] = []
        texts: list[str] = []
        n = estimate_of(res, row, COUNT)
        for x, y in pairs:
            parts = [
                n,
                estimate_of(res, row, Name.csum(x)),
                estimate_of(res, row, Name.csum(y)),
                estimate_of(res, row, Name.ss(x)),
                estimate_of(res, row, Name.ss(y)),
                estimate_of(res, row, Name.sxy(x, y)),
            ]
            if any(p is None for p in parts):
                continue
            r = pearson_from_sums(*parts)  # type: ignore[arg-type]
            if r is None:
                texts.append(
                    f"The correlation between {insights.label(x)} and "
                    f"{insights.label(y)} cannot be estimated at this privacy budget: the "
                    "noise hides their variation. Tighter public bounds for both, a larger "
                    "share of ε (fewer analyses, or a higher epsilon_per_release) or more "
                    "rows would make it estimable."
                )
                continue
            pv = published(Metric.PEARSON_R, r, x, {"with": y})
            values.append(pv)
            texts += insights.correlation_insights(x, y, pv)
        return values, texts

    name = b.unique_name("correlation:" + ",".join(ms))
    b.planned_add(Planned(Kind.CORRELATION, name, refs, finish))
