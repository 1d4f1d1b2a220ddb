"""The aggregates a DP query releases: noisy counts, fixed-point sums and quantiles, each
with its relative share of the query's ε.

>>> import polars as pl
>>> as_int, int_bounds, step = fixed_point(pl.col("hours"), (0.0, 60.0))
>>> int_bounds, step
((0, 1000000001), 6e-08)
>>> int_sum_agg("hours", int_bounds, "sum:hours", step=step).bounds
(0, 1000000001)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from privacy.release._opendp import opendp

#: the output column of every grouped query's row count (OpenDP thresholds on it)
LEN = "len"
#: fixed-point sums use integers up to this magnitude per row (i64 sums stay exact up to
#: max_rows_per_file = 10^9 rows)
FIXED_POINT_RANGE = 1_000_000_000


def fixed_point(
    expr: pl.Expr, bounds: tuple[float, float]
) -> tuple[pl.Expr, tuple[int, int], float]:
    """``expr`` (floats within public ``bounds``) as integers of ``step`` units.

    Integer sums need no float-rounding allowance in OpenDP's sensitivity, so their noise
    does not grow with ``max_length`` or the number of groups (float sums over private
    groups even need a public bound on the group count). The rounding error is at most
    step/2 per row, with step = max(|lower|, |upper|) / 10^9.
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    magnitude = max(abs(lo), abs(hi)) or 1.0
    step = magnitude / FIXED_POINT_RANGE
    ilo, ihi = math.floor(lo / step), math.ceil(hi / step)
    as_int = (expr.clip(lo, hi) / step).round().cast(pl.Int64).clip(ilo, ihi)
    return as_int, (ilo, ihi), step


@dataclass(frozen=True)
class Agg:
    """One DP aggregate of a query.

    ``kind``: ``len`` (a signed noisy row count: noise is not clamped at zero, so intervals
    stay honest), ``sum`` (of ``column`` clamped to ``bounds``; integer bounds for
    fixed-point columns) or ``quantile`` (``alpha``, chosen among public ``candidates`` by
    the exponential mechanism). ``step`` and ``offset`` convert the released column into
    published units, value × step + offset (fixed-point sums, centred quantiles).
    ``weight``: the aggregate's relative share of its query's ε.
    """

    name: str
    kind: Literal["len", "sum", "quantile"]
    column: str | None = None
    bounds: tuple[float, float] | None = None
    alpha: float = 0.5
    candidates: tuple[float, ...] = ()
    step: float = 1.0
    offset: float = 0.0
    weight: float = 1.0

    def expr(self, scale: float | None = None) -> pl.Expr:
        """The OpenDP expression (``scale`` None: OpenDP's ``global_scale`` decides)."""
        if self.kind == "len":
            return opendp().len(signed=True, scale=scale).alias(self.name)
        assert self.column is not None
        col: Any = pl.col(self.column)
        if self.kind == "sum":
            assert self.bounds is not None
            lo, hi = self.bounds
            b = (int(lo), int(hi)) if isinstance(lo, int) and isinstance(hi, int) else (lo, hi)
            return col.dp.sum(b, scale=scale).alias(self.name)  # type: ignore[no-any-return]
        return col.dp.quantile(self.alpha, list(self.candidates), scale=scale).alias(  # type: ignore[no-any-return]
            self.name
        )


def count_agg(name: str = LEN, weight: float = 1.0) -> Agg:
    return Agg(name, "len", weight=weight)


def int_sum_agg(
    column: str, bounds: tuple[int, int], name: str, step: float = 1.0, weight: float = 1.0
) -> Agg:
    """A noisy sum of integer ``column`` within ``bounds`` (published as sum × ``step``)."""
    return Agg(name, "sum", column, (int(bounds[0]), int(bounds[1])), step=step, weight=weight)


def quantile_agg(
    column: str,
    alpha: float,
    candidates: Sequence[float],
    name: str,
    step: float = 1.0,
    offset: float = 0.0,
    weight: float = 1.0,
) -> Agg:
    """A DP quantile of ``column`` among public ``candidates`` (column units)."""
    return Agg(
        name,
        "quantile",
        column,
        alpha=alpha,
        candidates=tuple(candidates),
        step=step,
        offset=offset,
        weight=weight,
    )
