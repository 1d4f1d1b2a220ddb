"""``quality``: what shaped the numbers, released under DP with ``QUALITY_SHARE`` of ε:
the shares missing and clamped at each bound, and what the per-person bound left out."""

from __future__ import annotations

from analytics import insights
from analytics.analyses.builder import Builder, Planned, Ref, Results
from analytics.analyses.names import Indicator, Name
from analytics.analyses.values import (
    ALL,
    COUNT,
    UNITS,
    estimate_of,
    published,
)
from analytics.vocabulary import Kind, Metric
from privacy.contract import Missing
from privacy.dp_intervals import Estimate, linear, ratio
from privacy.release import EXCESS, OVER, SHARE, Agg, count_agg, int_sum_agg
from privacy.results import PublishedValue

#: the share of each release's ε spent on disclosing what shaped the numbers (missing and
#: clamped shares, per-person truncation): the "quality" release
QUALITY_SHARE = 0.1


def plan(b: Builder, measures: list[str]) -> None:
    """What shaped the numbers, released under DP (a fixed ``QUALITY_SHARE`` of ε): per
    measure the share of values missing and the shares clamped at each bound, and with
    a privacy unit the share of people over ``max_rows_per_unit`` and (a lower bound)
    the share of rows the per-person truncation left out.

    With a privacy unit the shares are averaged over people (a person's share of rows
    missing, below or above a bound, each person counting once): sums of values in
    [0, 1] per person, so their noise does not grow with ``max_rows_per_unit``."""
    refs: list[Ref] = []
    k = b.contract.max_rows_per_unit
    has_units = b.contract.privacy_unit is not None
    wants_present = [
        m for m in measures if b.contract.columns[m].missing in (Missing.ALLOW, Missing.FILL)
    ]
    if has_units:
        q, total = b.query(UNITS, per_unit=True), UNITS
        b.use(refs, q, count_agg(UNITS))
        b.use(refs, q, int_sum_agg(OVER, (0, 1), "over"))
        b.use(refs, q, int_sum_agg(EXCESS, (0, k), "excess"))
        b.use(refs, b.query(ALL), count_agg(COUNT))
    else:
        q, total = b.query(ALL), COUNT
        b.use(refs, q, count_agg(COUNT))
    for m in measures:
        for what in ("present", "below", "above"):
            if what == "present" and m not in wants_present:
                continue
            if has_units:
                col = b.indicator(m, what)
                if col not in b.queries[q].person_shares:
                    b.queries[q].person_shares.append(col)
                b.use(refs, q, Agg(Name.indicator(m, what), "sum", SHARE + col, (0.0, 1.0)))
            else:
                b.use(refs, q, b.indicator_agg(m, what))
    if not measures and not has_units:
        return

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        res = results[q]
        row = res.frame.row(0, named=True)
        n = estimate_of(res, row, total, (0.0, None))
        values: list[PublishedValue] = []
        if n is None:
            return values, []
        whole = Estimate(n.value, n.terms)
        for m in measures:
            if m not in b.estimated:  # public bounds, shown with what they clamped
                lo, hi = b.bounds(m)
                values.append(PublishedValue(Metric.CLAMP_LOWER, lo, None, None, None, m))
                values.append(PublishedValue(Metric.CLAMP_UPPER, hi, None, None, None, m))
            present = estimate_of(res, row, Name.indicator(m, "present"))
            if present is not None:
                miss = ratio(linear([(1.0, whole), (-1.0, present)]), whole, (0.0, 1.0))
                if miss is not None:
                    values.append(published(Metric.MISSING_SHARE, miss, m))
            base = present if present is not None else whole
            sides: tuple[tuple[Indicator, str], ...] = (
                ("below", "clamped_low_share"),
                ("above", "clamped_high_share"),
            )
            for what, metric in sides:
                beyond = estimate_of(res, row, Name.indicator(m, what))
                share = ratio(beyond, base, (0.0, 1.0)) if beyond is not None else None
                if share is not None:
                    values.append(published(metric, share, m))
        if has_units:
            over, excess = estimate_of(res, row, "over"), estimate_of(res, row, "excess")
            share = ratio(over, whole, (0.0, 1.0)) if over is not None else None
            if share is not None:
                values.append(published(Metric.OVER_BOUND_SHARE, share))
            all_res = results[ALL]
            rows = estimate_of(all_res, all_res.frame.row(0, named=True), COUNT)
            if excess is not None and rows is not None:
                kept_and_left = linear([(1.0, rows), (1.0, excess)])
                share = ratio(excess, kept_and_left, (0.0, 1.0))
                if share is not None:
                    values.append(published(Metric.TRUNCATED_SHARE, share))
        return values, insights.quality_insights(values, b.contract, b.estimated)

    paid = sum(w for p in b.planned for _, _, w in p.refs)  # the analyses' weights
    share = QUALITY_SHARE / (1 - QUALITY_SHARE) * (paid or 1.0)
    b.planned_add(Planned(Kind.QUALITY, "quality", refs, finish), share)
