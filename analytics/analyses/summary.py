"""``summary``: rows, distinct people, and per measure the present values, sum and mean."""

from __future__ import annotations

from analytics import insights
from analytics.analyses.builder import Builder, Planned, Ref, Results
from analytics.analyses.values import (
    ALL,
    COUNT,
    UNITS,
    estimate_of,
    published,
)
from analytics.vocabulary import Kind, Metric
from privacy.contract import SummaryAnalysis
from privacy.release import count_agg
from privacy.results import PublishedValue


def plan(b: Builder, a: SummaryAnalysis) -> None:
    measures = a.measures if a.measures is not None else b.contract.measures
    refs: list[Ref] = []
    q = b.query(ALL)
    b.use(refs, q, count_agg(COUNT))
    has_units = b.contract.privacy_unit is not None
    if has_units:
        b.use(refs, b.query(UNITS, per_unit=True), count_agg(UNITS))
    for m in measures:
        b.use(refs, q, b.csum(m))
        b.use_n(refs, q, m)

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        res = results[ALL]
        row = res.frame.row(0, named=True)
        values: list[PublishedValue] = []
        count = estimate_of(res, row, COUNT, (0.0, None))
        if count is not None:
            values.append(published(Metric.COUNT, count))
        if has_units:
            ures = results[UNITS]
            units = estimate_of(ures, ures.frame.row(0, named=True), UNITS, (0.0, None))
            if units is not None:
                values.append(published(Metric.UNITS, units))
        for m in measures:
            n = b.n_of(res, row, m)
            if b.may_miss(m) and n is not None:
                values.append(published(Metric.PRESENT, n, m))
            total, mean = b.sum_and_mean(res, row, m, n)
            if total is not None:
                values.append(published(Metric.SUM, total, m))
            if mean is not None:
                values.append(published(Metric.MEAN, mean, m))
        return values, insights.summary_insights(values)

    b.planned_add(Planned(Kind.SUMMARY, b.unique_name("summary"), refs, finish))
