"""Intervals for DP estimates and for values derived from them (post-processing only).

Every interval covers the quantity as defined (the statistic of the rows OpenDP read, after
clamping and truncation); its only randomness is OpenDP's noise. Half-widths are exact
quantiles of sums of Laplace noise, ratios use Fieller's method, and the contrasts of a
comparison share one simultaneous event. See docs/architecture.md, "Intervals".

>>> from privacy.release import Noise
>>> a, b = Estimate.of(30.0, Noise("Float Laplace", 1.0)), Estimate.of(20.0, Noise("Float Laplace", 1.0))
>>> d = difference(a, b)
>>> d.value, round(d.halfwidth(), 3) == round(laplace_sum_quantile([1.0, 1.0], 0.05), 3)
(10.0, True)
"""

from privacy.dp_intervals.estimates import (
    Clip,
    Estimate,
    Ratio,
    Term,
    difference,
    fieller,
    function_of,
    linear,
    new_draw,
    ratio,
)
from privacy.dp_intervals.quantiles import laplace_sum_quantile
from privacy.dp_intervals.simultaneous import ANCHOR, ratio_range, simultaneous_pairs

__all__ = [
    "ANCHOR",
    "Clip",
    "Estimate",
    "Ratio",
    "Term",
    "difference",
    "fieller",
    "function_of",
    "laplace_sum_quantile",
    "linear",
    "new_draw",
    "ratio",
    "ratio_range",
    "simultaneous_pairs",
]
