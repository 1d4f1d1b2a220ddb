"""The polars plan a query spec becomes, for OpenDP to analyse: per-person truncation (a
random sample of each person's rows), optional filters, grouping and public keys.

>>> import polars as pl
>>> from privacy.release.aggregates import count_agg
>>> from privacy.release.queries import QuerySpec
>>> plan = query_plan(QuerySpec("rows", (count_agg(),)), {"x": pl.Int64}, has_unit=False,
...                   max_rows_per_unit=1)
>>> plan.collect_schema().names()
['len']
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from privacy.errors import PipelineError
from privacy.release.prepared import UNIT
from privacy.release.queries import EXCESS, OVER, ROWS, SHARE, QuerySpec


def query_plan(
    spec: QuerySpec,
    schema: Mapping[str, pl.DataType],
    *,
    has_unit: bool,
    max_rows_per_unit: int,
    scales: Mapping[str, float] | None = None,
) -> pl.LazyFrame:
    """The plan of ``spec`` on an empty frame of ``schema`` (the columns it reads): no data
    in it. ``scales`` None: OpenDP's ``global_scale`` decides each aggregate's noise."""
    k = max_rows_per_unit
    aggs = [a.expr(None if scales is None else scales[a.name]) for a in spec.aggs]
    lf = pl.LazyFrame(schema=dict(schema))
    if spec.per_unit:
        return _per_person(spec, lf, aggs, has_unit, k)
    for column in spec.present:
        lf = lf.filter(pl.col(column) == 1)
    if spec.reduce is not None:
        return _per_person_value(spec, lf, aggs, has_unit)
    if has_unit:
        # truncate_per_group(k, keep="sample"): at most k rows per person, a uniformly
        # random k of them. Keeping the first k in file order would be as private but
        # biased: in a file sorted by date, people with many rows would lose their
        # later rows only, and a flat trend would read as a fall.
        lf = lf.filter(pl.int_range(pl.len()).shuffle().over(UNIT) < k)
    if not spec.by:
        return lf.select(*aggs)
    if has_unit and spec.keys is None:
        # truncate_num_groups: a person touches at most k groups (OpenDP reads `< k + 1`
        # as the bound k+1 and takes the minimum with the k rows kept above). After the
        # row truncation a person has at most k rows, so at most k groups: this filter
        # never drops a row (which groups it would keep does not matter); it is there
        # for OpenDP to see the bound.
        ranks = pl.struct(*spec.by).rank("dense")
        lf = lf.filter(ranks.over(UNIT) < k + 1)
    return _on_keys(spec, lf.group_by(*spec.by).agg(*aggs))


def _per_person(
    spec: QuerySpec, lf: pl.LazyFrame, aggs: list[pl.Expr], has_unit: bool, k: int
) -> pl.LazyFrame:
    """One row per person: a person changes the aggregates by at most 1 row."""
    if not has_unit or spec.by:
        raise PipelineError(f"query '{spec.id}': per-unit queries need a privacy unit")
    rows = pl.col(ROWS).cast(pl.Int64)
    shares = [pl.col(c).mean().alias(SHARE + c) for c in spec.person_shares]
    per_person = lf.group_by(UNIT).agg(pl.len().alias(ROWS), *shares)
    return per_person.with_columns(
        (rows > k).cast(pl.Int64).alias(OVER), (rows - k).clip(0, k).alias(EXCESS)
    ).select(*aggs)


def _per_person_value(
    spec: QuerySpec, lf: pl.LazyFrame, aggs: list[pl.Expr], has_unit: bool
) -> pl.LazyFrame:
    """Groups of one value per person (their smallest or largest of a column)."""
    assert spec.reduce is not None
    if not has_unit or len(spec.by) != 1:
        raise PipelineError(f"query '{spec.id}': a per-person value needs a privacy unit")
    column, how = spec.reduce
    value = pl.col(column).min() if how == "min" else pl.col(column).max()
    per_person = lf.group_by(UNIT).agg(value.alias(spec.by[0]))
    return _on_keys(spec, per_person.group_by(*spec.by).agg(*aggs))


def _on_keys(spec: QuerySpec, grouped: pl.LazyFrame) -> pl.LazyFrame:
    """``grouped`` on the spec's public keys (a left join), or as it is without keys."""
    if spec.keys is None:
        return grouped
    return spec.keys.lazy().join(grouped, how="left", on=list(spec.by), nulls_equal=True)
