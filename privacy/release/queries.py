"""What to release: a query spec (aggregates sharing one grouping, one OpenDP measurement),
the resolved measurement, and what it released.

>>> from privacy.release.aggregates import count_agg
>>> spec = QuerySpec("rows_by_team", (count_agg(), count_agg("heavy", weight=3.0)), by=("team",))
>>> spec.thresholded, spec.weight
(True, 4.0)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from privacy.budget import Loss
from privacy.release.aggregates import Agg
from privacy.release.noise import Noise

#: per-unit queries: a person's rows, whether they exceed max_rows_per_unit, and by how
#: many rows (at most max_rows_per_unit of them: a bounded contribution)
ROWS, OVER, EXCESS = "__rows__", "__over__", "__excess__"
#: per-unit queries: the prefix of a person's share of rows with a 0/1 column set
SHARE = "__share__:"


@dataclass(frozen=True)
class QuerySpec:
    """One OpenDP measurement: aggregates, optionally per group.

    ``keys``: a public key frame (columns = ``by``) from the contract; groups are then
    exactly these keys (a left join of the keys with the aggregates; rows whose key is not
    among them are not released). With ``by`` and no keys, the key set is private and
    groups are released only above OpenDP's threshold on the ``len`` column, which must
    then be one of ``aggs``. ``per_unit``: aggregate one row per privacy unit (the
    distinct-people count), with no grouping; its aggregates may read the person's row
    count ``ROWS``, the indicator ``OVER`` (more rows than ``max_rows_per_unit``) and
    ``EXCESS`` (rows beyond it, at most ``max_rows_per_unit`` of them), and for each 0/1
    column ``c`` of ``person_shares`` the person's share of rows where it is 1,
    ``SHARE + c`` (in [0, 1]: each person counts once, whatever their rows). ``present``:
    columns (0/1 indicators) the rows must have set to 1 to take part (a row-wise filter
    before the per-person truncation: quantiles of the values that are there).
    """

    id: str
    aggs: tuple[Agg, ...]
    by: tuple[str, ...] = ()
    keys: pl.DataFrame | None = None
    per_unit: bool = False
    present: tuple[str, ...] = ()
    person_shares: tuple[str, ...] = ()
    #: (column, "min" or "max"): group one value per person, that person's smallest or
    #: largest of ``column``, under the name ``by[0]`` (a person is in one group)
    reduce: tuple[str, Literal["min", "max"]] | None = None

    @property
    def thresholded(self) -> bool:
        return bool(self.by) and self.keys is None

    @property
    def weight(self) -> float:
        return sum(a.weight for a in self.aggs)

    def digest(self) -> str:
        """What shapes the measurement besides the contract: aggregates, weights, grouping."""
        total = self.weight or 1.0
        parts = [
            (a.name, a.kind, a.column, a.bounds, a.alpha, a.candidates, round(a.weight / total, 12))
            for a in self.aggs
        ]
        keys = None if self.keys is None else self.keys.hash_rows().to_list()
        blob = repr(
            (parts, self.by, keys, self.per_unit, self.present, self.person_shares, self.reduce)
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class QueryResult:
    """What one measurement released."""

    query_id: str
    frame: pl.DataFrame  # DP output: aggregates per group (keys public or thresholded)
    noise: dict[str, Noise]  # output column -> its noise
    loss: Loss  # from the measurement's privacy map
    threshold: int | None = None
    #: output column -> its share of ``loss.epsilon`` (by weight; sums to loss.epsilon)
    epsilon_of: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """A measurement ready to invoke, with the explicit noise scales it was built from."""

    measurement: Any
    scales: dict[str, float]
    threshold: int | None
    loss: Loss

