"""Forecasts by post-processing released trend values only (no extra privacy budget).

Method: ordinary least squares of the released per-period values on the period ordinal
(a linear trend), extrapolated ``horizon`` periods past the last released period. The
interval is the classical 95% prediction interval of simple linear regression,

    ŷ₀ ± t(0.975, n-2) · s · sqrt(1 + 1/n + (x₀ - x̄)² / Sxx),

with s the residual standard deviation. The released values already carry DP noise, so the
residuals (and the interval) include it. At least three released periods are needed; with
fewer, nothing is forecast. The interval assumes a linear trend with independent errors:
the insight says "if the trend continues".

>>> fit, points = forecast_linear([1, 2, 3, 4], [2.0, 4.0, 6.0, 8.0], horizon=1)
>>> fit.slope, points[0].ordinal, points[0].value
(2.0, 5, 10.0)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# two-sided 95% Student t quantiles for 1..30 degrees of freedom
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

MIN_PERIODS = 3


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("degrees of freedom must be positive")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df)  # Cornish-Fisher, accurate to 1e-3 beyond 30


@dataclass(frozen=True)
class ForecastPoint:
    ordinal: int
    value: float
    lower: float
    upper: float


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    n: int
    resid_sd: float
    x_mean: float
    sxx: float

    def predict(self, x: float) -> ForecastPoint:
        y = self.intercept + self.slope * x
        half = (
            t975(self.n - 2)
            * self.resid_sd
            * math.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / self.sxx)
        )
        return ForecastPoint(int(x), y, y - half, y + half)

    def slope_interval(self) -> tuple[float, float]:
        half = t975(self.n - 2) * self.resid_sd / math.sqrt(self.sxx)
        return self.slope - half, self.slope + half


def fit_linear(xs: Sequence[int], ys: Sequence[float]) -> LinearFit | None:
    """OLS fit; None with fewer than MIN_PERIODS points or a degenerate x."""
    n = len(xs)
    if n < MIN_PERIODS or n != len(ys):
        return None
    x_mean = sum(xs) / n
    y_mean = sum(ys) / n
    sxx = sum((x - x_mean) ** 2 for x in xs)
    if sxx <= 0:
        return None
    sxy = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = y_mean - slope * x_mean
    sse = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    resid_sd = math.sqrt(sse / (n - 2))
    return LinearFit(slope, intercept, n, resid_sd, x_mean, sxx)


def forecast_linear(
    xs: Sequence[int], ys: Sequence[float], horizon: int
) -> tuple[LinearFit, list[ForecastPoint]] | None:
    """Forecast the ``horizon`` periods after the last of ``xs``."""
    fit = fit_linear(xs, ys)
    if fit is None:
        return None
    last = max(xs)
    return fit, [fit.predict(last + h) for h in range(1, horizon + 1)]
