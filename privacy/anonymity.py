"""k-anonymity and l-diversity as lazy polars transforms.

An *equivalence class* is the set of rows that share the same values on every
quasi-identifier (null counts as a value). A frame is k-anonymous when every class has at
least k rows, and l-diverse on a sensitive column when every class holds at least l
distinct values of it. Suppression removes the rows of the classes that break either rule;
removing a whole class never changes another class, so suppression is idempotent.

Everything here is lazy. ``suppress`` references its input twice (class sizes, then a
semi-join against the classes that are kept): the classes table is small (at most one row
per class) and the join streams.
"""

from __future__ import annotations

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


def kept_classes(
    lf: pl.LazyFrame,
    qis: list[str],
    k: int,
    *,
    sensitive: str | None = None,
    l_div: int | None = None,
) -> pl.LazyFrame:
    """The QI values of the classes that survive suppression (one row per class)."""
    sens = sensitive if l_div is not None else None
    return class_sizes(lf, qis, sens).filter(~_small(k, l_div if sens else None)).select(qis)


def suppress(
    lf: pl.LazyFrame,
    qis: list[str],
    k: int,
    *,
    sensitive: str | None = None,
    l_div: int | None = None,
    keep: pl.LazyFrame | pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """Remove rows of classes with fewer than ``k`` rows (or fewer than ``l_div`` distinct
    ``sensitive`` values). With no quasi-identifiers there are no classes: returns ``lf``.

    ``keep`` (the collected ``kept_classes`` of this very frame) saves the second scan.
    """
    if not qis or (k <= 1 and l_div is None):
        return lf
    if keep is None:
        keep = kept_classes(lf, qis, k, sensitive=sensitive, l_div=l_div)
    return lf.join(keep.lazy(), on=qis, how="semi", nulls_equal=True)


def suppressed_rows(
    lf: pl.LazyFrame,
    qis: list[str],
    k: int,
    *,
    sensitive: str | None = None,
    l_div: int | None = None,
) -> pl.LazyFrame:
    """A one-row frame {rows, rows_suppressed} of what ``suppress`` would remove."""
    if not qis or (k <= 1 and l_div is None):
        return lf.select(
            pl.len().alias("rows"), pl.lit(0, dtype=pl.UInt32).alias("rows_suppressed")
        )
    sens = sensitive if l_div is not None else None
    sizes = class_sizes(lf, qis, sens)
    return sizes.select(
        pl.col(_N).sum().alias("rows"),
        pl.col(_N).filter(_small(k, l_div if sens else None)).sum().alias("rows_suppressed"),
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
