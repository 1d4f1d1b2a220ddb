"""The noise OpenDP adds to one released column: its distribution, scale and accuracy.

>>> Noise("Float Laplace", 2.0).variance
8.0
>>> round(Noise("Float Laplace", 1.0).accuracy(0.05), 4)
2.9957
>>> Noise("ExponentialMin", 1.0).accuracy() is None
True
>>> round(Noise("Float Gaussian", 1.0).accuracy(0.05), 4), Noise("Float Gaussian", 2.0).variance
(1.96, 4.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Noise:
    """The noise OpenDP adds to one released column.

    ``raw_scale`` is OpenDP's scale on the column it noised; ``step`` converts that column's
    units into the published ones (fixed-point sums, see :func:`fixed_point`).
    """

    #: "Integer Laplace", "Float Laplace", "ExponentialMin" (pure ε); "Integer Gaussian",
    #: "Float Gaussian", "GumbelMin" (zCDP)
    distribution: str
    raw_scale: float
    step: float = 1.0

    @property
    def scale(self) -> float:
        return self.raw_scale * self.step

    @property
    def is_laplace(self) -> bool:
        return self.distribution in ("Integer Laplace", "Float Laplace")

    @property
    def is_gaussian(self) -> bool:
        """Gaussian noise (zCDP): ``scale`` is its standard deviation σ."""
        return self.distribution in ("Integer Gaussian", "Float Gaussian")

    def accuracy(self, alpha: float = 0.05) -> float | None:
        """Half-width a with P(|noise| > a) <= alpha, from ``opendp.accuracy``; None if the
        mechanism has no additive accuracy (quantiles)."""
        if self.raw_scale == 0:
            return 0.0
        from opendp.accuracy import (
            discrete_gaussian_scale_to_accuracy,
            discrete_laplacian_scale_to_accuracy,
            gaussian_scale_to_accuracy,
            laplacian_scale_to_accuracy,
        )

        if self.distribution == "Integer Gaussian":
            return float(discrete_gaussian_scale_to_accuracy(self.raw_scale, alpha)) * self.step
        if self.distribution == "Float Gaussian":
            return float(gaussian_scale_to_accuracy(self.raw_scale, alpha)) * self.step
        if self.distribution == "Integer Laplace":
            return float(discrete_laplacian_scale_to_accuracy(self.raw_scale, alpha)) * self.step
        if self.distribution == "Float Laplace":
            return float(laplacian_scale_to_accuracy(self.raw_scale, alpha)) * self.step
        return None

    @property
    def variance(self) -> float | None:
        b = self.raw_scale
        if b == 0:
            return 0.0
        if self.distribution == "Float Laplace":
            return 2 * b * b * self.step**2
        if self.is_gaussian:  # the discrete Gaussian's is a little below σ²: a bound
            return b * b * self.step**2
        if self.distribution == "Integer Laplace":
            q = math.exp(-1 / b)
            return 2 * q / (1 - q) ** 2 * self.step**2
        return None
