"""Plain-language insights that claim only what the 95% interval supports.

Every sentence is built from published values (value, interval) alone, so it reveals
nothing the numbers do not. A difference, change or correlation is called "clear" only
when its interval excludes zero; otherwise the sentence says there is no clear difference.
Noise is never phrased as a finding.

>>> fmt(12345.678), fmt(0.012345), label("project_completion_days")
('12,346', '0.0123', 'project completion days')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from privacy.contract import Contract
from privacy.results import PublishedValue

#: a correlation interval at least this wide says nothing: no value of r is quoted
WIDE_CORRELATION = 1.0


def label(column: str) -> str:
    """A column name for a sentence: ``project_completion_days`` -> ``project completion days``."""
    return column.replace("_", " ").strip()


def fmt(x: float) -> str:
    """A readable number: 12,345 / 123 / 12.3 / 1.23 / 0.123."""
    if not math.isfinite(x):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def fmt_interval(lower: float | None, upper: float | None, percent: bool = False) -> str:
    if lower is None or upper is None:
        return "interval not available"
    if percent:
        return f"95% CI {lower:.0f}% to {upper:.0f}%"
    sep = " to " if lower < 0 or upper < 0 else "–"
    return f"95% CI {fmt(lower)}{sep}{fmt(upper)}"


def excludes_zero(v: PublishedValue, point: float = 0.0) -> bool:
    return v.lower is not None and v.upper is not None and not (v.lower <= point <= v.upper)


def describe(name: str, v: PublishedValue) -> str:
    """``Average efficiency: 1.02 (95% CI 0.98–1.06).``"""
    return f"{name}: {fmt(v.value)} ({fmt_interval(v.lower, v.upper)})."


def summary_insights(values: Sequence[PublishedValue]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v.metric == "count":
            out.append(describe("Rows", v))
        elif v.metric == "units":
            out.append(describe("People (distinct privacy units)", v))
        elif v.metric == "mean" and v.column:
            out.append(describe(f"Average {label(v.column)}", v))
    return out


#: a quantile is quoted only if its noise may move its rank by less than this share of rows
QUANTILE_RANK_SHARE = 0.25


def quantile_rank_error(
    scale: float | None, alpha_q: float, candidates: int = 201, alpha: float = 0.05
) -> float:
    """Rows by which the exponential mechanism may miss quantile ``alpha_q``'s rank (a
    1-``alpha`` bound).

    OpenDP scores a candidate c for α = num/den by |(den−num)·#(x < c) − num·#(x > c)|, so
    a candidate r rows away from the true rank scores den·r worse; the selected candidate's
    score exceeds the best one's by more than scale·ln(candidates/alpha) with probability
    below alpha.
    """
    if scale is None:
        return math.inf
    den = Fraction(alpha_q).limit_denominator(1000).denominator
    return scale * math.log(candidates / alpha) / den


def distribution_insights(
    column: str, values: Sequence[PublishedValue], quantiles_asked: bool = True
) -> list[str]:
    """Quantiles are published only when the exponential mechanism's rank error is small
    (see ``analytics.analyses.distribution.quantiles``), each with a rough range in the measure's units;
    otherwise none is published and one sentence says why."""
    q = {v.metric: v for v in values if v.metric.startswith("quantile_")}
    if not q:
        if not quantiles_asked:
            return []
        return [
            f"Too few rows to quote quantiles of {label(column)} at this privacy budget: the "
            "noise could move them far from the true values, so none is published."
        ]
    out: list[str] = []

    def rough(v: PublishedValue) -> str:
        if v.lower is None or v.upper is None:
            return f"roughly {fmt(v.value)}"
        return f"roughly {fmt(v.value)} (likely between {fmt(v.lower)} and {fmt(v.upper)})"

    med = q.get("quantile_0.5")
    if med is not None:
        out.append(
            f"About half of the values of {label(column)} are at or below {rough(med)}; a "
            "differentially private estimate whose range is a rough guide, not a 95% interval."
        )
    lo, hi = q.get("quantile_0.25"), q.get("quantile_0.75")
    if lo is not None and hi is not None:
        out.append(
            f"The middle half of {label(column)} lies roughly between {fmt(lo.value)} and "
            f"{fmt(hi.value)}."
        )
    return out


def comparison_insights(
    measure: str, by: str, values: Sequence[PublishedValue], max_sentences: int = 3
) -> list[str]:
    """Pairwise sentences from "difference" and "ratio" values (simultaneous intervals)."""
    diffs = [v for v in values if v.metric == "difference"]
    ratios = {(v.group.get(by), v.group.get(f"{by}_vs")): v for v in values if v.metric == "ratio"}
    groups = sorted({v.group[by] for v in values if v.metric == "mean" and by in v.group})
    clear = [d for d in diffs if excludes_zero(d)]
    if not clear:
        if len(groups) >= 2:
            names = ", ".join(groups)
            return [
                f"No clear difference in average {label(measure)} between {label(by)} groups "
                f"({names}): every 95% interval for a difference includes zero."
            ]
        return []
    out: list[str] = []
    clear.sort(key=lambda d: abs(d.value), reverse=True)
    for d in clear[:max_sentences]:
        a, b = d.group[by], d.group[f"{by}_vs"]
        if d.value < 0:
            a, b = b, a
        r = ratios.get((a, b))
        if r is not None and excludes_zero(r, 1.0) and r.lower is not None and r.upper is not None:
            pct = (r.value - 1) * 100
            word = "higher" if pct >= 0 else "lower"
            out.append(
                f"{a}'s average {label(measure)} is {abs(pct):.0f}% {word} than {b}'s "
                f"({fmt_interval((r.lower - 1) * 100, (r.upper - 1) * 100, percent=True)})."
            )
        else:
            lo, hi = (d.lower, d.upper) if d.group[by] == a else (-(d.upper or 0), -(d.lower or 0))
            out.append(
                f"{a}'s average {label(measure)} is higher than {b}'s by {fmt(abs(d.value))} "
                f"({fmt_interval(lo, hi)})."
            )
    unclear = len(diffs) - len(clear)
    if unclear:
        out.append(f"{unclear} other pair(s) of {label(by)} groups show no clear difference.")
    return out


def trend_insights(
    points: Sequence[tuple[str, float, float | None]], what: str, noun: str
) -> list[str]:
    """First versus last released period, from (period label, value, unclipped half-width)
    triples; a change is clear only if it exceeds the half-widths combined."""
    pts = [p for p in points if p[2] is not None]
    if len(pts) < 2:
        if not points:
            return [f"No {noun} had enough rows to be released for {what}."]
        return [f"Only one {noun} had enough rows to be released for {what}."]
    (p0, v0, h0), (p1, v1, h1) = pts[0], pts[-1]
    change = v1 - v0
    half = math.hypot(h0 or 0.0, h1 or 0.0)
    base = f"{what.capitalize()} went from {fmt(v0)} ({p0}) to {fmt(v1)} ({p1})"
    if abs(change) > half:
        word = "rise" if change > 0 else "fall"
        return [f"{base}: a clear {word} (change {fmt_interval(change - half, change + half)})."]
    return [f"{base}: no clear change (change {fmt_interval(change - half, change + half)})."]


def correlation_insights(a: str, b: str, r: PublishedValue) -> list[str]:
    from analytics.correlations import strength

    iv = fmt_interval(r.lower, r.upper)
    if excludes_zero(r):
        sign = "positive" if r.value > 0 else "negative"
        return [
            f"{label(a).capitalize()} and {label(b)} show a clear {strength(r.value)} {sign} "
            f"correlation (r = {r.value:.2f}, {iv})."
        ]
    if r.lower is None or r.upper is None or r.upper - r.lower >= WIDE_CORRELATION:
        # the noise swamps the data: a value of r here would read as a finding
        return [
            f"No clear correlation between {label(a)} and {label(b)}: too few rows for the "
            f"privacy noise to estimate it ({iv})."
        ]
    return [f"No clear correlation between {label(a)} and {label(b)} (r = {r.value:.2f}, {iv})."]


def forecast_insights(
    what: str, points: Sequence[PublishedValue], n_periods: int, noun: str
) -> list[str]:
    if not points:
        return [
            f"Too few released {noun}s ({n_periods}) to forecast {what}; at least 3 are needed."
        ]
    p = points[0]
    period = next(iter(p.group.values()), "?")
    lo = fmt_interval(p.lower, p.upper).replace("95% CI", "95% prediction interval")
    return [
        f"If the linear trend of the last {n_periods} released {noun}s continues, {what} in "
        f"{period} would be about {fmt(p.value)} ({lo})."
    ]


#: a disclosed share is worth a sentence when it is at least this large and its 95% lower
#: bound is above ``NOTABLE_FLOOR`` (so noise alone does not raise it)
NOTABLE_SHARE = 0.05
NOTABLE_FLOOR = 0.01


def _notable(v: PublishedValue) -> bool:
    return v.value >= NOTABLE_SHARE and v.lower is not None and v.lower > NOTABLE_FLOOR


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 else "under 1%"


def quality_insights(
    values: Sequence[PublishedValue], contract: Contract, estimated: frozenset[str] = frozenset()
) -> list[str]:
    """What biases the numbers, in words, when its DP share is large enough to matter
    (``estimated``: measures whose bounds were estimated under DP for this release)."""
    out: list[str] = []
    k = contract.max_rows_per_unit
    for v in values:
        if not _notable(v):
            continue
        col = contract.columns.get(v.column or "")
        name = label(v.column or "")
        if v.metric == "missing_share" and col is not None:
            if col.fill is not None:
                how = (
                    f"count as {fmt(col.fill)} (missing: fill): averages of {name} lean "
                    f"towards {fmt(col.fill)}"
                )
            else:
                how = "are left out: sums and averages use the values that are there"
            out.append(f"About {_pct(v.value)} of {name} values are missing and {how}.")
        elif v.metric in ("clamped_low_share", "clamped_high_share") and col is not None:
            bounds = col.fixed_bounds
            if bounds is None:
                continue
            low = v.metric == "clamped_low_share"
            bound = bounds[0] if low else bounds[1]
            side = "lower" if low else "upper"
            if v.column in estimated:
                whose = f"estimated {side}"
                fix = "give public bounds (within: [lo, hi]) if such values are real"
            else:
                whose = f"contract's {side}"
                fix = f"{'lower' if low else 'raise'} the bound if such values are real"
            out.append(
                f"About {_pct(v.value)} of {name} values were {'below' if low else 'above'} "
                f"the {whose} bound of {fmt(bound)} and count as {fmt(bound)}: the average "
                f"of {name} is biased {'high' if low else 'low'}; {fix}."
            )
        elif v.metric == "over_bound_share":
            out.append(
                f"About {_pct(v.value)} of people have more than {k} rows in this file; rows "
                f"beyond {k} per person were left out at random, so that no person weighs more "
                "than that: raise max_rows_per_unit to keep more (the noise grows with it)."
            )
        elif v.metric == "truncated_share":
            out.append(
                f"At least {_pct(v.value)} of the rows were left out by the per-person bound "
                f"of {k} rows; counts and sums cover the rows kept."
            )
    return out
