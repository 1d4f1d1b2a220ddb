"""Shared pieces of the analyses: published values from estimates, and their levels."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist
from typing import Any

from privacy.dp_intervals import Estimate
from privacy.release import QueryResult
from privacy.results import PublishedValue

#: the chance, over all periods of a public range, that an empty period is taken for one
#: with rows (trimming a trend's span, choosing where a mean is published); and the
#: family-wise level of a comparison's simultaneous differences and ratios
FAMILY_ALPHA = 0.05
COUNT = "count"
ALL = "all"  # the ungrouped query
UNITS = "units"  # the one-row-per-person query


def published(
    metric: str,
    est: Estimate,
    column: str | None = None,
    group: dict[str, str] | None = None,
    alpha: float = 0.05,
) -> PublishedValue:
    iv = est.interval(alpha)
    return PublishedValue(
        metric=metric,
        value=est.clipped,
        lower=iv[0] if iv else None,
        upper=iv[1] if iv else None,
        scale=est.scale,
        column=column,
        group=dict(group or {}),
    )


def estimate_of(
    result: QueryResult,
    row: dict[str, Any],
    col: str,
    clip: tuple[float | None, float | None] = (None, None),
) -> Estimate | None:
    value = row.get(col)
    if value is None:
        return None
    return Estimate.of(float(value), result.noise.get(col), clip)


def halfwidth(est: Estimate, sd: float = 0.0, alpha: float = 0.05) -> float | None:
    """The unclipped (1-alpha) half-width of ``est``'s noise, widened in quadrature by the
    (1-alpha) quantile of a normal variation of standard deviation ``sd``: for sentences
    that claim a finding about the data, not only about the noise (see
    ``_Builder.truncation_sd``). Published intervals never include it."""
    half = est.halfwidth(alpha)
    if half is None:
        return None
    return math.hypot(half, NormalDist().inv_cdf(1 - alpha / 2) * sd)


def widened(pv: PublishedValue, sd: float, alpha: float = 0.05) -> PublishedValue:
    """``pv`` with its interval widened as in ``_halfwidth`` (for sentences only)."""
    if sd <= 0 or pv.lower is None or pv.upper is None:
        return pv
    add = NormalDist().inv_cdf(1 - alpha / 2) * sd
    lower = pv.value - math.hypot(pv.value - pv.lower, add)
    upper = pv.value + math.hypot(pv.upper - pv.value, add)
    return replace(pv, lower=lower, upper=upper)


def clearly_positive(est: Estimate, share: float = 0.0, alpha: float = 0.05) -> bool:
    """The (1-alpha) interval of ``est`` lies above ``share`` × its value (share 0: above
    zero, a count that surely has rows; share 0.5: a count precise enough to divide by)."""
    iv = est.interval(alpha)
    return iv is not None and iv[0] > max(share * est.value, 0.0)
