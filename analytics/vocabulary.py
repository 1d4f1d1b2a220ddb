"""The published vocabulary: metric names, release kinds and group-key conventions.

The analyses that publish values, the store, the command line and the dashboard all read
values by these names; they are defined here once. Each name is a ``str`` (``StrEnum``), so
a stored value compares equal to its member.

    >>> Metric.MEAN == "mean", quantile_metric(0.5), versus("team")
    (True, 'quantile_0.5', 'team_vs')
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    """What a release is: one of the contract's analyses, or what the engine adds."""

    SUMMARY = "summary"
    DISTRIBUTION = "distribution"
    COMPARISON = "comparison"
    TREND = "trend"
    CORRELATION = "correlation"
    FORECAST = "forecast"
    QUALITY = "quality"  # what shaped the numbers (shares missing, clamped, truncated)
    BOUNDS = "bounds"  # clamping bounds estimated under DP (bounds: auto)


class Metric(StrEnum):
    """The name of a published value (``PublishedValue.metric``)."""

    COUNT = "count"  # rows (per group or period where grouped)
    UNITS = "units"  # distinct people
    PRESENT = "present"  # values of a measure that are there
    SUM = "sum"
    MEAN = "mean"
    HISTOGRAM = "histogram"  # rows per bin, group {"bin": label}
    DIFFERENCE = "difference"  # group {by: x, versus(by): y}
    RATIO = "ratio"  # group {by: x, versus(by): y}
    PEARSON_R = "pearson_r"  # column x, group {"with": y}
    FORECAST = "forecast"  # a period's value on a linear trend (post-processing)
    MISSING_SHARE = "missing_share"
    CLAMPED_LOW_SHARE = "clamped_low_share"
    CLAMPED_HIGH_SHARE = "clamped_high_share"
    OVER_BOUND_SHARE = "over_bound_share"  # people with more rows than max_rows_per_unit
    TRUNCATED_SHARE = "truncated_share"  # rows left out by the per-person bound (at least)
    CLAMP_LOWER = "clamp_lower"  # the bounds a measure's values were clamped to
    CLAMP_UPPER = "clamp_upper"


#: the quality shares, in the order they are shown
SHARES = (
    Metric.MISSING_SHARE,
    Metric.CLAMPED_LOW_SHARE,
    Metric.CLAMPED_HIGH_SHARE,
    Metric.OVER_BOUND_SHARE,
    Metric.TRUNCATED_SHARE,
)
QUANTILE_PREFIX = "quantile_"
#: group keys: a histogram's bin, a correlation's other measure
BIN, WITH = "bin", "with"


def quantile_metric(level: float) -> str:
    """``quantile_0.5`` for the median: the metric of a quantile at ``level``."""
    return f"{QUANTILE_PREFIX}{level}"


def versus(by: str) -> str:
    """The group key of a contrast's second group: ``{by: x, versus(by): y}``."""
    return f"{by}_vs"
