"""Pearson correlation by post-processing DP sums.

For measures a and b the DP query releases n, Σa, Σb, Σa², Σb², Σab, where each value is
first clamped to its public bounds and centred on the bounds' midpoint (a public shift that
leaves r unchanged and keeps the sums small, so less noise is needed). Then

    r = (Σab/n − Σa·Σb/n²) / sqrt((Σa²/n − (Σa/n)²) · (Σb²/n − (Σb/n)²)),

clamped to [-1, 1]. Its 95% interval propagates the six sums' OpenDP noise by the delta
method (see ``privacy.dp_intervals``); it describes the noise only, not sampling error.

Noise: the second moments dominate r's error. Each is noised with a scale proportional to
its clamping range (half-width² of the bounds, times rows per person) over its ε share,
so r is only as good as n·var(a) is large against that. The catalogue therefore shares n,
Σa and Σb with the summary (released once) and gives the three second moments the larger
part of the correlation's ε. When a noisy variance is not precise (its 95% interval not
above half its value), or the noisy r falls outside [-1, 1], no r is released: the delta
method would give an interval that does not cover. When a released r's interval is wider
than 1, the insight quotes no value of r.

>>> strength(0.2), strength(-0.45), strength(0.9)
('weak', 'moderate', 'strong')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from privacy.dp_intervals import Estimate, function_of


def _pearson(x: Sequence[float]) -> float:
    n, sa, sb, saa, sbb, sab = x
    if n <= 1:
        raise ValueError("too few rows")
    cov = sab / n - (sa / n) * (sb / n)
    va = saa / n - (sa / n) ** 2
    vb = sbb / n - (sb / n) ** 2
    if va <= 0 or vb <= 0:
        raise ValueError("no variance")
    r = cov / math.sqrt(va * vb)
    if abs(r) > 1:  # impossible without noise: the noise dominates, the delta method fails
        raise ValueError("noise dominates")
    return r


def _variance(x: Sequence[float]) -> float:
    n, s, ss = x
    if n <= 1:
        raise ValueError("too few rows")
    return ss / n - (s / n) ** 2


#: r is released only if each variance's 95% lower bound exceeds this share of it
PRECISE_VARIANCE_SHARE = 0.5


def pearson_from_sums(
    n: Estimate, sa: Estimate, sb: Estimate, saa: Estimate, sbb: Estimate, sab: Estimate
) -> Estimate | None:
    """Pearson r with delta-method noise terms; None when the noise dominates.

    The delta method is accurate only when the variances in r's denominator are precise, so
    r is released only if each noisy variance's 95% interval lies above half its value
    (post-processing of the released sums); otherwise, and when the noisy sums imply no
    variance or an |r| above 1, there is no honest interval and None is returned.
    """
    for s, ss in ((sa, saa), (sb, sbb)):
        var = function_of(_variance, [n, s, ss])
        iv = var.interval() if var is not None else None
        if var is None or iv is None or iv[0] <= PRECISE_VARIANCE_SHARE * var.value:
            return None
    return function_of(_pearson, [n, sa, sb, saa, sbb, sab], clip=(-1.0, 1.0))


def strength(r: float) -> str:
    a = abs(r)
    if a < 0.3:
        return "weak"
    if a < 0.6:
        return "moderate"
    return "strong"
