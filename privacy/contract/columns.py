"""A contract's columns: role, type, masking action, public keys, bounds and periods.

>>> Column(role="measure", type="float", bounds=[0, 2]).fixed_bounds
(0.0, 2.0)
>>> Column(role="identifier").mask_action
'drop'
>>> Column(role="measure", type="float", bounds="auto").auto_bounds
AutoBounds(auto=True, within=None, share=0.1)
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from privacy.contract.enums import ColumnType, Granularity, Missing, Role, _Strict
from privacy.contract.generalizations import (
    BandGeneralization,
    DateGeneralization,
    Generalization,
    TopCodeGeneralization,
)
from privacy.contract.periods import MAX_PERIODS, PeriodRange, period_count


class AutoBounds(_Strict):
    """Clamping bounds estimated under DP at each release, instead of typed in.

    ``bounds: auto`` (or ``bounds: {auto: true, within: [lo, hi]}`` to cap the search with
    public limits). Each release first spends ``share`` of its ε on a DP histogram of the
    measure over a public, log-spaced grid of candidate values (inside ``within`` when
    given), takes the range holding all but a small tail of the values, and releases with
    it; the estimated bounds are DP outputs and are published with the release.
    """

    auto: Literal[True] = True
    within: tuple[float, float] | None = None
    share: float = Field(default=0.1, gt=0, lt=0.5)

    @field_validator("within")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError("within must be two finite numbers, the lower first")
        return v


class Column(_Strict):
    role: Role
    type: ColumnType = ColumnType.STRING
    description: str | None = None
    missing: Missing = Missing.ALLOW
    #: identifiers and text: what masking does with the column
    action: Literal["drop", "pseudonymize", "keep"] | None = None
    #: identifiers: values must be unique within a file
    unique: bool = False
    #: dimensions: the public list of group keys (absent = keys are private)
    keys: list[str] | None = None
    #: measures: public clamping bounds [lower, upper], or ``auto`` (estimated under DP
    #: at each release, see :class:`AutoBounds`); required for measures
    bounds: tuple[float, float] | AutoBounds | Literal["auto"] | None = None
    #: measures with ``missing: fill``: the public value a null counts as in releases
    fill: float | None = None
    #: time: period used for trends
    granularity: Granularity | None = None
    #: time: the public range of periods trends release (public keys; rows outside are
    #: dropped before release). Without it, periods are released only above a threshold.
    periods: PeriodRange | None = None
    #: time stored as text: strptime format, e.g. "%Y-%m-%d"
    format: str | None = None
    #: quasi-identifiers (and dimensions): generalization applied when masking
    generalize: Generalization | None = None

    @field_validator("bounds")
    @classmethod
    def _finite_ordered(
        cls, v: tuple[float, float] | AutoBounds | Literal["auto"] | None
    ) -> tuple[float, float] | AutoBounds | None:
        if v is None or isinstance(v, AutoBounds):
            return v
        if v == "auto":
            return AutoBounds()
        lo, hi = v
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("bounds must be finite numbers")
        if lo >= hi:
            raise ValueError("lower bound must be below upper bound")
        return v

    @field_validator("keys")
    @classmethod
    def _unique_keys(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if len(set(v)) != len(v):
                raise ValueError("keys must be distinct")
            if not v:
                raise ValueError("keys, when given, must list at least one key")
        return v

    @model_validator(mode="after")
    def _role_rules(self) -> Column:
        _check_values(self)
        if self.role is Role.TIME and self.type not in (
            ColumnType.DATE,
            ColumnType.DATETIME,
            ColumnType.INTEGER,
        ):
            raise ValueError("a time column must have type date, datetime or integer")
        _check_periods(self)
        if self.keys is not None and self.role is not Role.DIMENSION:
            raise ValueError("keys are only allowed on dimensions")
        if self.action == "keep" and self.role is Role.IDENTIFIER:
            raise ValueError("an identifier cannot be kept in clear: use drop or pseudonymize")
        _check_generalize(self)
        return self

    @property
    def fixed_bounds(self) -> tuple[float, float] | None:
        """The public bounds typed into the contract (None for ``bounds: auto``)."""
        b = self.bounds
        return (float(b[0]), float(b[1])) if isinstance(b, tuple) else None

    @property
    def auto_bounds(self) -> AutoBounds | None:
        """The ``bounds: auto`` settings (None for typed-in bounds)."""
        return self.bounds if isinstance(self.bounds, AutoBounds) else None

    @property
    def mask_action(self) -> Literal["drop", "pseudonymize", "keep"]:
        """What masking does with this column, defaults included."""
        if self.action is not None:
            return self.action
        if self.role in (Role.IDENTIFIER, Role.TEXT, Role.IGNORE):
            return "drop"
        return "keep"


def _check_values(col: Column) -> None:
    """A measure's bounds, type and fill; bounds and fill on measures only."""
    if col.role is Role.MEASURE:
        if col.bounds is None:
            raise ValueError(
                "a measure needs bounds: public ones, bounds: [lower, upper], or bounds: "
                "auto to estimate them under DP at each release"
            )
        if col.type not in (ColumnType.INTEGER, ColumnType.FLOAT):
            raise ValueError("a measure must have type integer or float")
        limits = col.fixed_bounds or (
            col.auto_bounds.within if col.auto_bounds is not None else None
        )
        if col.fill is not None and limits and not (limits[0] <= col.fill <= limits[1]):
            raise ValueError("fill must lie inside bounds")
        if (col.missing is Missing.FILL) != (col.fill is not None):
            raise ValueError(
                "missing: fill needs a public fill value (fill: 0), and fill needs "
                "missing: fill; without them means use the values that are there"
            )
    elif col.missing is Missing.FILL or col.fill is not None:
        raise ValueError("missing: fill and fill are only allowed on measures")
    elif col.bounds is not None:
        raise ValueError("bounds are only allowed on measures")


def _check_periods(col: Column) -> None:
    if col.periods is None:
        return
    if col.role is not Role.TIME:
        raise ValueError("periods are only allowed on time columns")
    is_int = isinstance(col.periods.start, int)
    if is_int != (col.type is ColumnType.INTEGER):
        raise ValueError("periods must be integers for integer time, dates otherwise")
    n = period_count(col.periods, col.granularity)
    if n > MAX_PERIODS:
        raise ValueError(
            f"periods span {n} {(col.granularity or Granularity.MONTH).value}s; at "
            f"most {MAX_PERIODS} are allowed: narrow the range or coarsen granularity"
        )


def _check_generalize(col: Column) -> None:
    g = col.generalize
    numeric = (ColumnType.INTEGER, ColumnType.FLOAT)
    if isinstance(g, BandGeneralization | TopCodeGeneralization) and col.type not in numeric:
        raise ValueError(f"generalize kind '{g.kind}' needs type integer or float")
    temporal = (ColumnType.DATE, ColumnType.DATETIME)
    if isinstance(g, DateGeneralization) and col.type not in temporal:
        raise ValueError("generalize kind 'date' needs type date or datetime")
