"""Pearson correlation by post-processing DP sums.

For measures a and b the DP query releases n, Σa, Σb, Σa², Σb², Σab, where each value is
first clamped to its public bounds and centred on the bounds' midpoint (a public shift that
leaves r unchanged and keeps the sums small, so less noise is needed). Then

    r = (Σab/n − Σa·Σb/n²) / sqrt((Σa²/n − (Σa/n)²) · (Σb²/n − (Σb/n)²)),

clamped to [-1, 1]. Its 95% interval propagates the six sums' OpenDP noise by the delta
method (see ``privacy.dp_intervals``); it describes the noise only, not sampling error.
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
    return cov / math.sqrt(va * vb)


def pearson_from_sums(
    n: Estimate, sa: Estimate, sb: Estimate, saa: Estimate, sbb: Estimate, sab: Estimate
) -> Estimate | None:
    """Pearson r with delta-method noise terms; None if the noisy sums imply no variance."""
    return function_of(_pearson, [n, sa, sb, saa, sbb, sab], clip=(-1.0, 1.0))


def strength(r: float) -> str:
    a = abs(r)
    if a < 0.3:
        return "weak"
    if a < 0.6:
        return "moderate"
    return "strong"
