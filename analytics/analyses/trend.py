"""``trend``: the row count and measures' means per calendar period.

The contract's public ``periods`` range gives public keys (every period in it is released);
without one, periods pass OpenDP's threshold (δ > 0).
"""

from __future__ import annotations

from typing import Any

from analytics import insights
from analytics.analyses.builder import NO_PERIOD, Builder, Planned, Ref, Results
from analytics.analyses.names import Name, QueryId
from analytics.analyses.values import (
    COUNT,
    FAMILY_ALPHA,
    clearly_positive,
    estimate_of,
    halfwidth,
    published,
)
from analytics.trends import is_integer_time, partial_periods, period_label, period_noun
from analytics.vocabulary import Kind, Metric
from privacy.contract import TrendAnalysis
from privacy.dp_intervals import Estimate
from privacy.release import count_agg
from privacy.results import PublishedValue

#: a period's mean is published only if its count's 95% lower bound exceeds this share of it
MEAN_COUNT_SHARE = 0.5


def trend_query(b: Builder, t: str, measures: list[str], refs: list[Ref], weight: float) -> str:
    pcol, keys = b.period(t)
    q = b.query(QueryId.period(t), by=(pcol,), keys=keys)
    b.use(refs, q, count_agg(COUNT), weight)
    for m in measures:
        b.use(refs, q, b.csum(m), weight)
        b.use_n(refs, q, m, weight)
    return q

def period_series(
    b: Builder, results: Results, q: str, t: str, measure: str | None, trim: bool = False
) -> list[tuple[int, str, Estimate]]:
    """(ordinal, label, estimate) per released period, in time order.

    With public periods every period of the range has a count, but a mean is given only
    where its period's count surely has rows (at level 5% over all periods) and is
    precise (its 95% interval above half its value):
    elsewhere it would be noise over noise, and the delta-method interval of a ratio
    with so noisy a denominator would not be calibrated. ``trim`` (for insights and
    forecasts) keeps the span from the first to the last period whose count is clearly
    positive: periods of the range before or after the file's rows would read as a fall
    or rise that is only the range's edge; it also leaves out a first or last period the
    range covers only in part (``partial_periods``). All of it is post-processing of
    released values.
    """
    res = results[q]
    col = b.contract.columns[t]
    integer = is_integer_time(col, b.schema[t])
    public = col.periods is not None
    pcol = Name.period(t)
    rows: list[tuple[int, Estimate, dict[str, Any]]] = []
    for row in res.frame.iter_rows(named=True):
        ordinal = row[pcol]
        count = estimate_of(res, row, COUNT, (0.0, None))
        if ordinal is None or ordinal == NO_PERIOD or count is None:
            continue
        rows.append((int(ordinal), count, row))
    rows.sort(key=lambda r: r[0])
    # one test per period of the range: at level 5% over all of them (Bonferroni), an
    # empty period passes for a period with rows in under 2.5% of releases
    alpha = FAMILY_ALPHA / max(len(rows), 1)
    if public and trim:
        clear = [i for i, (_, c, _) in enumerate(rows) if clearly_positive(c, 0.0, alpha)]
        rows = rows[clear[0] : clear[-1] + 1] if clear else []
        partial = partial_periods(col)
        rows = [r for r in rows if r[0] not in partial]
    out = []
    for ordinal, count, row in rows:
        label = period_label(ordinal, col.granularity, integer)
        if measure is None:
            out.append((ordinal, label, count))
            continue
        n = b.n_of(res, row, measure)
        if n is None or (
            public
            and not (clearly_positive(n, 0.0, alpha) and clearly_positive(n, MEAN_COUNT_SHARE))
        ):
            continue
        _, mean = b.sum_and_mean(res, row, measure, n)
        if mean is not None:
            out.append((ordinal, label, mean))
    return out

def period_counts(b: Builder, results: Results, q: str, t: str, m: str | None) -> dict[int, float]:
    """Period ordinal -> the released count a value of ``m`` (None: rows) rests on."""
    res = results[q]
    out: dict[int, float] = {}
    for row in res.frame.iter_rows(named=True):
        n = b.n_of(res, row, m) if m is not None else estimate_of(res, row, COUNT, (0.0, None))
        if row[Name.period(t)] is not None and n is not None:
            out[int(row[Name.period(t)])] = n.clipped
    return out

def plan(b: Builder, a: TrendAnalysis) -> None:
    t = a.time
    refs: list[Ref] = []
    q = trend_query(b, t, list(a.measures), refs, 1.0)
    col = b.contract.columns[t]
    noun = period_noun(col.granularity, is_integer_time(col, b.schema[t]))

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        values: list[PublishedValue] = []
        texts: list[str] = []
        for m in (None, *a.measures):
            metric = Metric.COUNT if m is None else Metric.MEAN
            series = period_series(b, results, q, t, m)
            values += [published(metric, e, m, {t: lab}) for _, lab, e in series]
            span = period_series(b, results, q, t, m, trim=True)
            counts = period_counts(b, results, q, t, m)
            what = (
                f"rows per {noun}" if m is None else f"average {insights.label(m)} per {noun}"
            )
            points = [
                (lab, e.clipped, halfwidth(e, b.truncation_sd(counts[o], m)))
                for o, lab, e in span
            ]
            texts += insights.trend_insights(points, what, noun)
        return values, texts

    mech = "laplace" if col.periods is not None else "laplace+threshold"
    b.planned_add(Planned(Kind.TREND, b.unique_name(f"trend:{t}"), refs, finish, mech))
