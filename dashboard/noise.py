"""How much the privacy noise moves each published number: a noise-impact level per value,
so that people who do not read intervals still see which numbers to trust.

Pure functions of a value's metric, value and interval (``analytics.store.rows.ValueRow`` or
``PublishedValueRow``). The level comes from the value's 95% half-width: the larger distance
from the value to either end of its interval (intervals clipped at 0 are lopsided; the
larger side is the honest one).

* ``low``     half-width under ``LOW_RELATIVE`` (10%) of the value's magnitude;
* ``medium``  from ``LOW_RELATIVE`` up to ``HIGH_RELATIVE`` (50%);
* ``high``    ``HIGH_RELATIVE`` or more, or the interval of a count, sum or mean includes
  zero (the noise could account for all of it).

Shares (the quality release's values, in [0, 1]) are judged by their absolute half-width
in percentage points instead: under ``LOW_SHARE_POINTS`` (2 points) low, up to
``HIGH_SHARE_POINTS`` (10 points) medium, beyond that high. Values without a 95% interval
get a label instead of a level: quantiles ("rough guide": their range comes from the
mechanism's rank error) and forecasts ("forecast": a projection of the trend).

docs/dashboard.md and the dataset page's "How to read these numbers" state these constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from analytics.vocabulary import QUANTILE_PREFIX, SHARES, Metric

#: relative 95% half-width (of the value's magnitude) below which noise impact is low
LOW_RELATIVE = 0.10
#: relative 95% half-width at or above which noise impact is high
HIGH_RELATIVE = 0.50
#: shares: absolute 95% half-width, in percentage points, below which impact is low
LOW_SHARE_POINTS = 2.0
#: shares: absolute 95% half-width, in percentage points, at or above which impact is high
HIGH_SHARE_POINTS = 10.0

#: metrics whose 95% interval including zero makes their noise impact high
ZERO_IS_HIGH = (Metric.COUNT, Metric.UNITS, Metric.PRESENT, Metric.HISTOGRAM, Metric.SUM,
                Metric.MEAN)
#: simultaneous intervals (family-wise over a comparison's contrasts)
CONTRASTS = (Metric.DIFFERENCE, Metric.RATIO)

LOW, MEDIUM, HIGH = "low", "medium", "high"
ROUGH, FORECAST, NO_INTERVAL = "rough guide", "forecast", "no interval"


class Valued(Protocol):
    metric: str
    value: float
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class Impact:
    """A value's noise impact: ``level`` (low, medium, high, or a label for values without
    a 95% interval), the badge's text and colour, and a sentence saying why."""

    level: str
    text: str
    colour: str
    why: str


def is_share(metric: str) -> bool:
    """A share of the quality release, in [0, 1]."""
    return metric in SHARES


def is_quantile(metric: str) -> bool:
    return metric.startswith(QUANTILE_PREFIX)


def halfwidth(v: Valued) -> float | None:
    """The larger distance from the value to an end of its interval (None: no interval)."""
    if v.lower is None or v.upper is None:
        return None
    return max(v.upper - v.value, v.value - v.lower, 0.0)


def _level(v: Valued) -> tuple[str, str]:
    half = halfwidth(v)
    assert half is not None
    if is_share(v.metric):
        points = round(100 * half, 9)  # 0.6 - 0.5 is 10 points, not 9.999...
        why = f"95% interval within ±{points:.1f} percentage points of the share"
        if points < LOW_SHARE_POINTS:
            return LOW, why
        return (MEDIUM if points < HIGH_SHARE_POINTS else HIGH), why
    assert v.lower is not None and v.upper is not None
    if v.metric in ZERO_IS_HIGH and v.lower <= 0 <= v.upper:
        return HIGH, "its 95% interval includes zero: the noise could account for all of it"
    magnitude = abs(v.value)
    relative = round(half / magnitude, 9) if magnitude > 0 else math.inf
    why = ("95% interval within ±" + (f"{100 * relative:.0f}%" if math.isfinite(relative)
                                       else "any share") + " of the value")
    if relative < LOW_RELATIVE:
        return LOW, why
    return (MEDIUM if relative < HIGH_RELATIVE else HIGH), why


_COLOURS = {LOW: "success", MEDIUM: "warning", HIGH: "danger"}


def noise_impact(v: Valued) -> Impact:
    """The noise impact of one published value."""
    if is_quantile(v.metric):
        return Impact(ROUGH, "rough guide", "secondary",
                      "a quantile: its range is a rough guide from the mechanism's rank "
                      "error, not a 95% interval")
    if v.metric == Metric.FORECAST:
        return Impact(FORECAST, "forecast", "info",
                      "a projection of the published trend, if it continues; its band is a "
                      "95% prediction interval, not a measurement")
    if v.lower is None or v.upper is None:
        return Impact(NO_INTERVAL, "no interval", "secondary",
                      "published without an interval of its own (computed from other "
                      "released values, or an estimated bound)")
    level, why = _level(v)
    return Impact(level, f"noise: {level}", _COLOURS[level], f"Noise impact {level}: {why}.")


def _interval(metric: str) -> tuple[str, str]:
    """What a value's lower/upper are: the name shown next to them, and in words."""
    if is_quantile(metric):
        return "rough range", "rough range (from the rank error; not a 95% interval)"
    if metric == Metric.FORECAST:
        return "95% prediction interval", "95% prediction interval (forecast)"
    if metric in CONTRASTS:
        return "simultaneous 95% CI", "simultaneous 95% interval of the noise"
    return "95% CI", "95% interval of the noise"


def interval_kind(metric: str) -> str:
    """What a value's lower/upper are, in words (for tables, hovers and exports)."""
    return _interval(metric)[1]


def interval_text(metric: str, lower: str, upper: str) -> str:
    """A value's interval, named for what it is: "95% CI 1 to 2", "simultaneous 95% CI …",
    "95% prediction interval …", or a quantile's "rough range … (not a 95% interval)"."""
    tail = " (not a 95% interval)" if is_quantile(metric) else ""
    return f"{_interval(metric)[0]} {lower} to {upper}{tail}"
