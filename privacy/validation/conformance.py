"""Conform a raw frame to its contract: the declared columns in contract order, trimmed,
empty text as null, each cast to its type; a value that cannot be read (or NaN, or outside
a dimension's public keys) becomes null, row by row (docs/architecture.md, invariants 7,
refused-not-lost, and 8, person-stable).

>>> from privacy.contract import parse_contract
>>> contract = parse_contract("{dataset: d, rows_are_people: true, budget: {epsilon_cap: 1}, "
...     "columns: {hours: {role: measure, type: float, bounds: [0, 60]}, "
...     "team: {role: dimension, keys: [a, b]}}}")
>>> raw = pl.LazyFrame({"hours": [" 7.5", "x", ""], "team": ["a", "c", "b"]})
>>> conform(raw, contract).collect().rows()
[(7.5, 'a'), (None, None), (None, 'b')]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import polars as pl

from privacy.contract import Column, ColumnType, Contract
from privacy.errors import ContractViolation
from privacy.validation.report import _plural

DTYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.INTEGER: pl.Int64(),
    ColumnType.FLOAT: pl.Float64(),
    ColumnType.BOOLEAN: pl.Boolean(),
    ColumnType.DATE: pl.Date(),
    ColumnType.DATETIME: pl.Datetime("us"),
}

_TRUE = ("true", "t", "yes", "y", "1", "1.0")
_FALSE = ("false", "f", "no", "n", "0", "0.0")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_Step = Callable[[pl.Expr], pl.Expr]
_RAW = "__pa_raw__"
_OUT = "__pa_outside_keys__"


def _names(names: Iterable[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _same(e: pl.Expr) -> pl.Expr:
    return e


def _trim(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars()


def _nonblank(s: pl.Expr) -> pl.Expr:
    """Text, empty -> null."""
    return pl.when(s.str.len_bytes() > 0).then(s)


def _integral(f: pl.Expr) -> pl.Expr:
    ok = f.is_finite() & (f == f.round(0)) & (f.abs() < 2.0**53)
    return pl.when(ok).then(f).cast(pl.Int64, strict=False)


def _finite(f: pl.Expr) -> pl.Expr:
    return pl.when(f.is_finite()).then(f)


def _int_text(s: pl.Expr) -> pl.Expr:
    return pl.coalesce(s.cast(pl.Int64, strict=False), _integral(s.cast(pl.Float64, strict=False)))


def _iso_datetime(s: pl.Expr) -> pl.Expr:
    return pl.coalesce(
        *(s.str.strptime(pl.Datetime("us"), f, strict=False) for f in _DATETIME_FORMATS)
    )


def _cast(dtype: pl.DataType) -> _Step:
    return lambda e: e.cast(dtype, strict=False)


def _steps_text(col: Column) -> tuple[_Step, _Step, _Step]:
    t = col.type
    if t is ColumnType.STRING:
        return _trim, _same, _nonblank
    # Blank text cannot be read as any other type: a non-strict cast turns "" into null,
    # so only text columns need the empty -> null step.
    if t is ColumnType.INTEGER:
        return _trim, _same, _int_text
    if t is ColumnType.FLOAT:
        return _trim, _cast(pl.Float64()), _finite
    if t is ColumnType.BOOLEAN:
        mapping = dict.fromkeys(_TRUE, True) | dict.fromkeys(_FALSE, False)
        return (
            _trim,
            lambda s: s.str.to_lowercase().replace_strict(
                mapping, default=None, return_dtype=pl.Boolean
            ),
            _same,
        )
    if t is ColumnType.DATE:
        # without a format only ISO dates (YYYY-MM-DD) are read: one parse per value
        fmt = col.format or "%Y-%m-%d"
        return _trim, lambda s: s.str.strptime(pl.Date, fmt, strict=False), _same
    # datetime
    if col.format:
        fmt = col.format
        return _trim, lambda s: s.str.strptime(pl.Datetime("us"), fmt, strict=False), _same
    return _trim, lambda s: s.str.replace("T", " ", literal=True), _iso_datetime


def _steps_typed(col: Column, dtype: pl.DataType) -> tuple[_Step, _Step, _Step]:
    t = col.type
    if dtype.is_nested() or dtype == pl.Object:
        # unreadable: counted as type failures
        return _same, lambda _: pl.lit(None, dtype=DTYPES[t]), _same
    if t is ColumnType.STRING:
        return _same, lambda c: c.cast(pl.String, strict=False).str.strip_chars(), _nonblank
    if t is ColumnType.INTEGER:
        if dtype.is_float():
            return _same, _cast(pl.Float64()), _integral
        return _same, _cast(pl.Int64()), _same
    if t is ColumnType.FLOAT:
        return _same, _cast(pl.Float64()), _finite
    if t is ColumnType.DATE and isinstance(dtype, pl.Datetime):
        return _same, lambda c: c.dt.date(), _same
    if t is ColumnType.DATETIME and isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return (
            _same,
            lambda c: c.dt.convert_time_zone("UTC")
            .dt.replace_time_zone(None)
            .cast(pl.Datetime("us")),
            _same,
        )
    return _same, _cast(DTYPES[t]), _same


def _steps(col: Column, dtype: pl.DataType) -> tuple[_Step, _Step, _Step]:
    """How a raw column of ``dtype`` becomes its contract type, in three steps: prepare
    (trim text), parse (cast), finish (null out what cannot be used). The later steps
    read their input more than once; polars computes an expression once per reference,
    so ``_checked`` runs each step as its own select (the value is computed once)."""
    return _steps_text(col) if dtype == pl.String else _steps_typed(col, dtype)


def _in_keys(value: pl.Expr, keys: list[str]) -> pl.Expr:
    """True where a conformed value is present but not one of the public ``keys``."""
    return value.is_not_null() & ~value.cast(pl.String).is_in(keys)


def conform_expr(name: str, col: Column, dtype: pl.DataType, *, keys: bool = True) -> pl.Expr:
    """The expression that turns raw column ``name`` (of ``dtype``) into its contract type
    (``keys=False``: without nulling values outside the column's public keys)."""
    prepare, parse, finish = _steps(col, dtype)
    value = finish(parse(prepare(pl.col(name)))).cast(DTYPES[col.type])
    if keys and col.keys is not None:
        value = pl.when(_in_keys(value, col.keys)).then(None).otherwise(value)
    return value.alias(name)


def _raw_present(name: str, dtype: pl.DataType) -> pl.Expr:
    """True where the raw value is there (non-null, non-blank text)."""
    if dtype == pl.String:
        return (pl.col(name).str.strip_chars().str.len_bytes() > 0).fill_null(False)
    return pl.col(name).is_not_null()


def check_columns(schema: pl.Schema, contract: Contract) -> tuple[list[str], list[str]]:
    """(missing, extra) column names of a frame with ``schema`` against the contract."""
    present = set(schema.names())
    missing = [n for n in contract.columns if n not in present]
    extra = [n for n in schema.names() if n not in contract.columns]
    return missing, extra


def _column_problems(missing: list[str], extra: list[str], contract: Contract) -> str | None:
    parts = []
    if missing:
        parts.append(f"{_plural(len(missing), 'declared column')} missing: {_names(missing)}")
    if extra and contract.extra_columns == "reject":
        parts.append(
            f"{_plural(len(extra), 'column')} not in the contract: {_names(extra)} "
            "(declare them, or set extra_columns: drop)"
        )
    if not parts:
        return None
    return f"dataset '{contract.dataset}': " + "; ".join(parts)


def _can_fail(col: Column, dtype: pl.DataType) -> bool:
    """Whether a value of raw ``dtype`` can fail the column's type check (text as text can't)."""
    return not (dtype == pl.String and col.type is ColumnType.STRING)


def _checked(
    lf: pl.LazyFrame, schema: pl.Schema, contract: Contract, names: list[str]
) -> pl.LazyFrame:
    """Conformed values of ``names`` under their own names, plus one raw-presence flag
    (``__pa_raw__<col>``, as ``_raw_present``) per column whose type check can fail.

    The same values as ``conform_expr``, computed step by step (see ``_steps``): three
    chained selects, which the streaming engine runs as one map. ``conform`` and
    ``validation_counts`` both build this plan, so ``pl.collect_all`` over a query on each
    (counts and a staged copy of the conformed rows) parses and conforms the file once.
    A query on conformed columns only never computes the flags (projection pushdown).
    """
    steps = {n: _steps(contract.columns[n], schema[n]) for n in names}
    flagged = [n for n in names if _can_fail(contract.columns[n], schema[n])]
    prepared = lf.select(steps[n][0](pl.col(n)).alias(n) for n in names)
    # after the prepare step text is trimmed and typed values are untouched
    flags = [
        (pl.col(n).str.len_bytes() > 0).fill_null(False).alias(_RAW + n)
        if schema[n] == pl.String
        else pl.col(n).is_not_null().alias(_RAW + n)
        for n in flagged
    ]
    parsed = prepared.select(*(steps[n][1](pl.col(n)).alias(n) for n in names), *flags)
    finished = parsed.select(
        *(
            steps[n][2](pl.col(n)).cast(DTYPES[contract.columns[n].type]).alias(n)
            for n in names
        ),
        *(pl.col(_RAW + n) for n in flagged),
    )
    keyed = {n: keys for n in names if (keys := contract.columns[n].keys) is not None}
    if not keyed:
        return finished
    # a value outside a dimension's public keys is a bad value: null, flagged for the count
    exprs: list[pl.Expr] = []
    for n, keys in keyed.items():
        outside = _in_keys(pl.col(n), keys)
        exprs += [pl.when(outside).then(None).otherwise(pl.col(n)).alias(n), outside.alias(_OUT + n)]
    return finished.with_columns(exprs)


def conform(lf: pl.LazyFrame, contract: Contract) -> pl.LazyFrame:
    """Select and cast the contract's columns; pure and lazy (reads only the schema)."""
    schema = lf.collect_schema()
    missing, extra = check_columns(schema, contract)
    problem = _column_problems(missing, extra, contract)
    if problem:
        raise ContractViolation(problem)
    names = list(contract.columns)
    return _checked(lf, schema, contract, names).select(names)
