"""k-anonymity and l-diversity as lazy polars transforms: class sizes, the classes kept,
suppression of the rest.

An equivalence class is the rows that share every quasi-identifier value (null counts as
a value); suppression removes the classes with fewer than k rows (or fewer than l distinct
sensitive values), and never changes another class, so it is idempotent.

>>> import polars as pl
>>> lf = pl.LazyFrame({"zip": ["191", "191", "100"], "age": [30, 30, 40]})
>>> suppress(lf, Suppression(["zip", "age"], k=2)).collect().height, achieved_k(lf, ["zip", "age"])
(2, 1)
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

_N = "__pa_class_rows__"
_L = "__pa_class_distinct__"


def class_sizes(lf: pl.LazyFrame, qis: list[str], sensitive: str | None = None) -> pl.LazyFrame:
    """One row per equivalence class: the QI values, its row count (and distinct sensitive)."""
    aggs = [pl.len().alias(_N)]
    if sensitive is not None:
        aggs.append(pl.col(sensitive).drop_nulls().n_unique().alias(_L))
    return lf.group_by(qis).agg(aggs)


def _small(k: int, l_div: int | None) -> pl.Expr:
    cond = pl.col(_N) < k
    if l_div is not None:
        cond = cond | (pl.col(_L) < l_div)
    return cond


@dataclass(frozen=True)
class Suppression:
    """What suppression removes: over the quasi-identifiers ``qis``, the classes with fewer
    than ``k`` rows (or, with ``l_div``, fewer than ``l_div`` distinct ``sensitive``
    values)."""

    qis: list[str]
    k: int
    sensitive: str | None = None
    l_div: int | None = None

    @property
    def removes_nothing(self) -> bool:
        """No quasi-identifiers (so no classes), or no rule that can remove a class."""
        return not self.qis or (self.k <= 1 and self.l_div is None)

    @property
    def columns(self) -> list[str]:
        """The columns the rule reads: the quasi-identifiers and the sensitive column."""
        return list(dict.fromkeys([*self.qis, *([self.sensitive] if self.sensitive else [])]))

    def classes(self, lf: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.Expr]:
        """The ``class_sizes`` of ``lf`` and the condition true of the classes removed."""
        sens = self.sensitive if self.l_div is not None else None
        return class_sizes(lf, self.qis, sens), _small(self.k, self.l_div if sens else None)


def kept_classes(lf: pl.LazyFrame, rule: Suppression) -> pl.LazyFrame:
    """The QI values of the classes that survive suppression (one row per class)."""
    sizes, small = rule.classes(lf)
    return sizes.filter(~small).select(rule.qis)


def suppress(
    lf: pl.LazyFrame, rule: Suppression, *, keep: pl.LazyFrame | pl.DataFrame | None = None
) -> pl.LazyFrame:
    """Remove the rows of the classes ``rule`` removes. With no quasi-identifiers there are
    no classes: returns ``lf``.

    ``keep`` (the collected ``kept_classes`` of this very frame) saves the second scan.
    """
    if rule.removes_nothing:
        return lf
    if keep is None:
        keep = kept_classes(lf, rule)
    return lf.join(keep.lazy(), on=rule.qis, how="semi", nulls_equal=True)


def suppressed_rows(lf: pl.LazyFrame, rule: Suppression) -> pl.LazyFrame:
    """A one-row frame {rows, rows_suppressed} of what ``suppress`` would remove."""
    if rule.removes_nothing:
        return lf.select(
            pl.len().alias("rows"), pl.lit(0, dtype=pl.UInt32).alias("rows_suppressed")
        )
    sizes, small = rule.classes(lf)
    return sizes.select(
        pl.col(_N).sum().alias("rows"),
        pl.col(_N).filter(small).sum().alias("rows_suppressed"),
    )


def achieved_k(lf: pl.LazyFrame, qis: list[str]) -> int | None:
    """Smallest class size over ``qis`` (None when there are no QIs or no rows)."""
    if not qis:
        return None
    value = class_sizes(lf, qis).select(pl.col(_N).min()).collect(engine="streaming").item()
    return int(value) if value is not None else None


def achieved_l(lf: pl.LazyFrame, qis: list[str], sensitive: str) -> int | None:
    """Smallest number of distinct ``sensitive`` values in a class (None without QIs/rows)."""
    if not qis:
        return None
    value = (
        class_sizes(lf, qis, sensitive).select(pl.col(_L).min()).collect(engine="streaming").item()
    )
    return int(value) if value is not None else None
