"""``comparison``: a measure per group, and pairwise differences and ratios with
simultaneous 95% intervals (family-wise, see ``contrasts``)."""

from __future__ import annotations

import math
from typing import Any

from analytics import insights
from analytics.analyses.builder import Builder, Planned, Ref, Results
from analytics.analyses.names import QueryId
from analytics.analyses.trend import MEAN_COUNT_SHARE
from analytics.analyses.values import (
    COUNT,
    FAMILY_ALPHA,
    clearly_positive,
    estimate_of,
    published,
    widened,
)
from analytics.vocabulary import Kind, Metric, versus
from privacy.contract import ComparisonAnalysis
from privacy.dp_intervals import Estimate, difference, ratio, ratio_range, simultaneous_pairs
from privacy.release import count_agg
from privacy.results import PublishedValue

#: pairwise contrasts are published for at most this many groups
MAX_PAIRS_GROUPS = 12


def plan(b: Builder, a: ComparisonAnalysis) -> None:
    m, by = a.measure, a.by
    dcol, keys, names = b.dimension(by)
    q = b.query(QueryId.by(by), by=(dcol,), keys=keys)
    refs: list[Ref] = []
    b.use(refs, q, count_agg(COUNT))
    b.use(refs, q, b.csum(m))
    b.use_n(refs, q, m)

    def key_of(value: Any) -> str:
        return names[int(value)] if names is not None else str(value)

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        res = results[q]
        values: list[PublishedValue] = []
        means: dict[str, Estimate] = {}
        counts: dict[str, Estimate] = {}
        sds: dict[str, float] = {}
        rows = sorted(res.frame.iter_rows(named=True), key=lambda r: key_of(r[dcol]))
        for row in rows:
            g = {by: key_of(row[dcol])}
            count = estimate_of(res, row, COUNT, (0.0, None))
            n = b.n_of(res, row, m)
            total, mean = b.sum_and_mean(res, row, m, n)
            if count is not None:
                values.append(published(Metric.COUNT, count, m, g))
            if b.may_miss(m) and n is not None:
                values.append(published(Metric.PRESENT, n, m, g))
            if total is not None:
                values.append(published(Metric.SUM, total, m, g))
            if mean is not None:
                values.append(published(Metric.MEAN, mean, m, g))
                means[g[by]] = mean
                counts[g[by]] = n  # type: ignore[assignment]
                sds[g[by]] = b.truncation_sd(n.clipped if n else 0.0, m)
        seen = [v for v in values if v.metric == Metric.MEAN]
        groups = sorted(means)
        pairs = [(x, y) for i, x in enumerate(groups) for y in groups[i + 1 :]]
        if pairs and len(groups) <= MAX_PAIRS_GROUPS:
            contrasts = pairwise_contrasts(b, m, by, means, counts)
            alpha = FAMILY_ALPHA / len(pairs)  # (for the sentences' truncation allowance)
            for pv in contrasts:
                x, y = pv.group[by], pv.group[versus(by)]
                values.append(pv)
                if pv.metric == "difference":
                    seen.append(widened(pv, math.hypot(sds[x], sds[y]), alpha))
                else:
                    den = means[y].clipped
                    spread = math.hypot(sds[x], pv.value * sds[y]) / den
                    seen.append(widened(pv, spread, alpha))
        # sentences see the intervals widened for per-person truncation's variation
        return values, insights.comparison_insights(m, by, seen)

    mech = "laplace" if keys is not None else "laplace+threshold"
    name = b.unique_name(f"comparison:{m}:{by}")
    b.planned_add(Planned(Kind.COMPARISON, name, refs, finish, mech))

def pairwise_contrasts(
    b: Builder, m: str, by: str, means: dict[str, Estimate], counts: dict[str, Estimate]
) -> list[PublishedValue]:
    """Pairwise differences and ratios of the groups' means, with simultaneous intervals.

    Coverage is family-wise: with probability 95% (under the means' noise) EVERY
    difference and EVERY ratio interval of the comparison covers its value at once (so
    each single interval covers at least 95% of the time; the sentences, which pick the
    clear pairs among all, rely on exactly that). It is one event
    (``simultaneous_pairs``): the means' errors lie within u_x of a common shift bounded
    by w; the difference of groups x, y is then within ±(u_x + u_y) and the ratio within
    ``ratio_range``, so the ratio x/y and y/x are reciprocal. (Bonferroni over the pairs
    covered 98.5–99%: a noisy group's pairs miss together.) Only means whose count is
    precise enough to divide by (its 95% interval above ``MEAN_COUNT_SHARE`` of it, as for
    trends) take part: the error laws are the means' delta-method ones (the pivot
    Σ(x − mid) − c·n over the released n), accurate only then; a mean with a noisier
    count is published with its own exact Fieller interval but enters no contrast. A
    ratio is published only where its denominator stays positive on the event. Values
    are of the clipped means; intervals are intersected with what the bounds allow.
    Both kinds keep their names and shapes: ``difference`` with group {by: x, by_vs: y}
    (x < y), ``ratio`` both ways.
    """
    lo_b, hi_b = b.bounds(m)
    groups = sorted(x for x in means if clearly_positive(counts[x], MEAN_COUNT_SHARE))
    family = simultaneous_pairs([means[x] for x in groups], FAMILY_ALPHA)
    if family is None or len(groups) < 2:
        return []
    half, shift = dict(zip(groups, family[0], strict=True)), family[1]
    span = hi_b - lo_b
    out: list[PublishedValue] = []
    for i, x in enumerate(groups):
        for y in groups[i + 1 :]:
            g = {by: x, versus(by): y}
            d = difference(means[x], means[y])
            h = half[x] + half[y]
            lower, upper = max(d.value - h, -span), min(d.value + h, span)
            out.append(PublishedValue(Metric.DIFFERENCE, d.value, lower, upper, d.scale, m, g))
            r = ratio(means[x].plain(), means[y].plain())
            scale = r.scale if r is not None else None
            mx, my = means[x].clipped, means[y].clipped
            for a, den, ua, ub, gg in (
                (mx, my, half[x], half[y], g),
                (my, mx, half[y], half[x], {by: y, versus(by): x}),
            ):
                rng = ratio_range(a, den, ua, ub, shift) if den > 0 else None
                if rng is None:
                    continue
                lower, upper = rng
                if lo_b > 0:
                    lower, upper = max(lower, lo_b / hi_b), min(upper, hi_b / lo_b)
                out.append(PublishedValue(Metric.RATIO, a / den, lower, upper, scale, m, gg))
    return out
