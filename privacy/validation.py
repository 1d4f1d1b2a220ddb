"""Conform a raw file to its contract and validate it, counting failures without values.

Two steps, both on lazy polars frames:

``conform(lf, contract)``
    Selects the contract's columns in contract order (missing or, by default, extra columns
    raise ``ContractViolation``), trims text, turns empty text into null and casts every
    column to its declared type with ``strict=False``: a value that cannot be read becomes
    null (and is counted by ``validate``). NaN and infinities count as unreadable floats,
    and a dimension's value outside its public ``keys`` becomes null too. Every step is
    row-wise: one person's bad value changes that row only, never the fate of the file
    (ARCHITECTURE invariants 7 and 8). The plan is three chained selects (trim, parse,
    finish: see ``_steps``) so that each value is parsed once, plus the keys step;
    ``conform_expr`` is the same conversion as one expression.

    What then happens to a nulled value is the column's ``missing`` policy (kept as null,
    its row dropped, or the file refused under ``missing: reject``). Whole-file rejection
    is for structural problems (format, encoding, header, declared columns missing or
    extra), for ``missing: reject`` and ``unique`` columns, for user expectations, and for
    contracts that opt in with ``on_bad_value: reject``.

``validate(raw, conformed, contract, expectations_dir=...)``
    Builds the Great Expectations suite of the contract and reports, per rule, how many
    rows fail it. How it stays in bounded memory on a 10-million-row file:

    1. **One streaming polars pre-pass** over ``raw`` computes every built-in count exactly
       (a single ``select`` of sums, run with the streaming engine: memory is O(columns),
       plus one hash set per column declared ``unique``). The conformed values are computed
       inside that pass by the very plan ``conform`` builds, so ``conformed`` is only
       checked for shape. The pass is public as ``validation_counts`` (a lazy one-row
       frame) and ``validation_report`` turns its result into the report: collect the
       counts with ``pl.collect_all`` next to another query on ``conformed`` (e.g. a
       staged copy of the conformed rows) and the file is parsed and conformed once.
    2. **Great Expectations sees only what it needs**: the contract's suite
       (``build_suite``) runs on the *evidence rows* (rows that break at least one row
       rule, at most ``evidence_rows`` of them; values outside a measure's bounds are
       clamped, not failures, and do not call GE); on a clean file GE is not even imported.
       Its counts agree with the pre-pass whenever the evidence fits (a test pins this).
       Cross-row rules (``unique``) are counted by polars only.
    3. **User expectations** (``<expectations_dir>/<dataset>.expectations.json``, a GE
       suite in GE's own JSON form) run through GE on every row, streamed in chunks of
       ``chunk_rows`` rows: one chunk is in pandas at a time. Aggregate expectations (e.g.
       a column mean) are checked per chunk.

    GE runs with ``partial_unexpected_count: 0`` and without unexpected rows or index
    lists, and only rule names, columns, success flags and counts are copied out of its
    results (``GeResult``): no value ever leaves this module.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, computed_field

from privacy.contract import Column, ColumnType, Contract, Missing, Role
from privacy.errors import ContractError, ContractViolation

log = logging.getLogger(__name__)

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
#: GE result format: counts only, never a value, an index or a row
GE_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unique_unexpected": False,
}
_TYPE_OK = "__type_ok__"
_Step = Callable[[pl.Expr], pl.Expr]
_RAW = "__pa_raw__"
_OUT = "__pa_outside_keys__"


# --------------------------------------------------------------------------- conform


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
    """Select and cast the contract's columns; pure and lazy (reads only the schema).

    >>> conform(pl.LazyFrame({"x": [" 1", "a"]}), contract)  # doctest: +SKIP
    """
    schema = lf.collect_schema()
    missing, extra = check_columns(schema, contract)
    problem = _column_problems(missing, extra, contract)
    if problem:
        raise ContractViolation(problem)
    names = list(contract.columns)
    return _checked(lf, schema, contract, names).select(names)


# --------------------------------------------------------------------------- report model


class RuleResult(BaseModel):
    """One rule on one column: how many rows (or columns, for column rules) fail it."""

    model_config = ConfigDict(frozen=True)

    rule: str
    column: str | None = None
    failed_count: int = Field(ge=0)
    #: whether a failure refuses the whole file; per-row rules (a value that cannot be read
    #: or lies outside its public keys) only null the value unless the contract opts in
    #: with ``on_bad_value: reject``
    rejects: bool = True

    def describe(self) -> str:
        where = f" on '{self.column}'" if self.column is not None else ""
        if self.rule == "column_present":
            return f"column '{self.column}' is missing"
        if self.rule == "no_extra_columns":
            return f"column '{self.column}' is not in the contract"
        return f"{self.rule}{where}: {_plural(self.failed_count, 'row')}"

    def describe_nulled(self) -> str:
        """A per-row rule's count as a note: ``2 values outside the public keys of 'team'``."""
        n = _plural(self.failed_count, "value")
        if self.rule == "in_keys":
            return f"{n} outside the public keys of '{self.column}'"
        if self.rule == "type":
            return f"{_plural(self.failed_count, 'unreadable value')} in '{self.column}'"
        return f"{n} failing {self.rule} in '{self.column}'"


class GeResult(BaseModel):
    """What is kept of one Great Expectations result: names, a flag and counts."""

    model_config = ConfigDict(frozen=True)

    expectation: str
    column: str | None = None
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    source: str = "contract"  # "contract" or "user"


class ValidationReport(BaseModel):
    """Counts-only outcome of validating one file against its contract."""

    dataset: str
    contract_version: int
    rows: int = Field(ge=0)
    rules: list[RuleResult] = Field(default_factory=list)
    #: measure -> rows outside the contract's bounds (clamped before release, not a failure)
    clamped: dict[str, int] = Field(default_factory=dict)
    #: rows fed to GE for the contract suite (evidence rows) and for user expectations
    ge_rows_checked: int = 0
    ge_results: list[GeResult] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """No rule that refuses the file failed (per-row problems only null values)."""
        return all(r.failed_count == 0 for r in self.rules if r.rejects)

    @property
    def failures(self) -> list[RuleResult]:
        """The failed rules that refuse the file."""
        return [r for r in self.rules if r.failed_count > 0 and r.rejects]

    @property
    def nulled(self) -> list[RuleResult]:
        """Per-row rules that failed: their values were set to null, the file goes on."""
        return [r for r in self.rules if r.failed_count > 0 and not r.rejects]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def values_nulled(self) -> int:
        """How many cell values were set to null (then the column's missing policy applied)."""
        return sum(r.failed_count for r in self.nulled)

    def notes(self) -> str | None:
        """One counts-only line on the values set to null, for operators (None: none)."""
        nulled = self.nulled
        if not nulled:
            return None
        shown = "; ".join(r.describe_nulled() for r in nulled[:6])
        more = f"; and {len(nulled) - 6} more columns" if len(nulled) > 6 else ""
        return (
            f"{_plural(self.values_nulled, 'value')} set to null, then handled by the "
            f"column's missing policy: {shown}{more}"
        )

    def reason(self) -> str:
        """One line naming the failing rules, columns and counts (never values)."""
        fails = self.failures
        if not fails:
            return f"dataset '{self.dataset}': all {len(self.rules)} rules pass on {self.rows} rows"
        shown = "; ".join(r.describe() for r in fails[:8])
        more = f"; and {len(fails) - 8} more" if len(fails) > 8 else ""
        return (
            f"dataset '{self.dataset}': {_plural(len(fails), 'rule')} failed on "
            f"{_plural(self.rows, 'row')}: {shown}{more}"
        )

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------- GE suite


def build_suite(contract: Contract) -> list[dict[str, Any]]:
    """The contract's row rules as GE expectation configurations ({"type", "kwargs", "meta"}).

    ``meta.rule`` names the report rule each expectation checks. Type checks run on an
    indicator column (``__type_ok__<col>``: the raw value was empty or could be read).
    """
    out: list[dict[str, Any]] = []
    for name, col in contract.columns.items():
        out.append(
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": _TYPE_OK + name, "value_set": [True]},
                "meta": {"rule": "type", "column": name},
            }
        )
        if col.missing is Missing.REJECT:
            out.append(
                {
                    "type": "expect_column_values_to_not_be_null",
                    "kwargs": {"column": name},
                    "meta": {"rule": "not_null", "column": name},
                }
            )
        if col.keys is not None:
            out.append(
                {
                    "type": "expect_column_values_to_be_in_set",
                    "kwargs": {"column": name, "value_set": list(col.keys)},
                    "meta": {"rule": "in_keys", "column": name},
                }
            )
        if col.role is Role.MEASURE and (bounds := col.fixed_bounds) is not None:
            out.append(
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {
                        "column": name,
                        "min_value": bounds[0],
                        "max_value": bounds[1],
                    },
                    "meta": {"rule": "clamped", "column": name},
                }
            )
    return out


def load_user_expectations(expectations_dir: Path | None, dataset: str) -> list[dict[str, Any]]:
    """User expectations stored beside the contract, or [] when there are none.

    The file is GE's suite JSON: ``{"expectations": [{"type": ..., "kwargs": {...}}]}``.
    """
    if expectations_dir is None:
        return []
    path = expectations_dir / f"{dataset}.expectations.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path}: cannot read expectations ({type(exc).__name__})") from None
    items = data.get("expectations") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ContractError(f"{path}: expected a JSON object with an 'expectations' list")
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("type"), str)):
            raise ContractError(f"{path}: expectations.{i}: each expectation needs a 'type'")
        if not isinstance(item.get("kwargs", {}), dict):
            raise ContractError(f"{path}: expectations.{i}.kwargs must be an object")
    return [{"type": e["type"], "kwargs": dict(e.get("kwargs", {})), "meta": {}} for e in items]


class _GeRunner:
    """An ephemeral GE context with one pandas dataframe asset and one suite."""

    def __init__(self, configs: list[dict[str, Any]], name: str) -> None:
        import great_expectations as gx  # slow import: only when GE has work to do
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self._ctx = gx.get_context(mode="ephemeral")
        self._ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = self._ctx.data_sources.add_pandas(f"pa-{name}").add_dataframe_asset("frame")
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = gx.ExpectationSuite(name=f"pa-{name}")
        for i, cfg in enumerate(configs):
            try:
                exp = ExpectationConfiguration(
                    type=cfg["type"], kwargs=cfg["kwargs"]
                ).to_domain_obj()
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise ContractError(
                    f"expectation {i} ('{cfg['type']}') is not a valid GE expectation "
                    f"({type(exc).__name__})"
                ) from None
            suite.add_expectation(exp)
        self._suite = self._ctx.suites.add(suite)
        self._vd = self._ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"pa-{name}", data=batch, suite=self._suite)
        )

    def run(self, df: Any) -> list[dict[str, Any]]:
        """Raw GE results for pandas frame ``df`` (as JSON dicts, result format counts-only)."""
        result = self._vd.run(batch_parameters={"dataframe": df}, result_format=GE_RESULT_FORMAT)
        return [r.to_json_dict() for r in result.results]


def _ge_counts(
    raw_results: list[dict[str, Any]],
) -> list[tuple[str, str | None, bool, int | None, int | None]]:
    out = []
    for r in raw_results:
        cfg = r.get("expectation_config", {})
        res = r.get("result") or {}
        col = cfg.get("kwargs", {}).get("column")
        out.append(
            (
                str(cfg.get("type")),
                col if isinstance(col, str) else None,
                bool(r.get("success")),
                res.get("element_count") if isinstance(res.get("element_count"), int) else None,
                res.get("unexpected_count")
                if isinstance(res.get("unexpected_count"), int)
                else None,
            )
        )
    return out


# --------------------------------------------------------------------------- validate


def validation_counts(raw: pl.LazyFrame, contract: Contract) -> pl.LazyFrame:
    """Lazy one-row frame of every built-in count of ``validate`` (its streaming pre-pass).

    Collect it with the streaming engine and pass it to ``validation_report``. Collected
    with ``pl.collect_all`` next to one query on ``conform(raw, contract)`` (e.g. a staged
    copy of the conformed rows), the file is parsed and conformed once for both. (With
    polars 1.36, three such queries at once made it buffer rows and double peak memory:
    compute the ``kept_classes`` table from the staged copy instead.) Its columns are an
    implementation detail.

    Two chained selects: the first maps each row to its conformed values and presence
    flags (a streaming map), the second reduces them. Reducing straight from the raw
    columns lets polars keep every intermediate alive and doubles peak memory.
    """
    schema = raw.collect_schema()
    present = [n for n in contract.columns if n in schema]
    reduce: list[pl.Expr] = [pl.len().alias("rows")]
    for name in present:
        col = contract.columns[name]
        c = pl.col(name)
        can_fail = _can_fail(col, schema[name])
        if can_fail or col.missing is Missing.REJECT or col.keys or col.unique:
            reduce.append(c.is_not_null().sum().alias(f"nn:{name}"))
        if can_fail:
            reduce.append(pl.col(_RAW + name).sum().alias(f"raw_nn:{name}"))
        if col.keys is not None:
            reduce.append(pl.col(_OUT + name).sum().alias(f"in_keys:{name}"))
        if (bounds := col.fixed_bounds) is not None:
            lo, hi = bounds
            reduce.append(((c < lo) | (c > hi)).sum().alias(f"clamped:{name}"))
        if col.unique:
            reduce.append(c.drop_nulls().n_unique().alias(f"distinct:{name}"))
    return _checked(raw, schema, contract, present).select(reduce)


def _evidence_filter(schema: pl.Schema, contract: Contract, present: list[str]) -> pl.Expr:
    bad: list[pl.Expr] = []
    for name in present:
        col = contract.columns[name]
        conf = conform_expr(name, col, schema[name], keys=False)
        bad.append(_raw_present(name, schema[name]) & conf.is_null())
        if col.missing is Missing.REJECT:
            bad.append(conf.is_null())
        if col.keys is not None:
            bad.append(conf.is_not_null() & ~conf.cast(pl.String).is_in(col.keys))
        if (bounds := col.fixed_bounds) is not None:
            bad.append((conf < bounds[0]) | (conf > bounds[1]))
    return pl.any_horizontal(bad) if bad else pl.lit(False)


def _evidence_frame(
    raw: pl.LazyFrame, schema: pl.Schema, contract: Contract, present: list[str], limit: int
) -> pl.DataFrame:
    cols: list[pl.Expr] = []
    for name in present:
        col = contract.columns[name]
        # GE checks the keys itself: it sees the values before they are nulled
        conf = conform_expr(name, col, schema[name], keys=False)
        cols.append(conf)
        cols.append((~_raw_present(name, schema[name]) | conf.is_not_null()).alias(_TYPE_OK + name))
    flt = _evidence_filter(schema, contract, present)
    return raw.filter(flt).select(cols).head(limit).collect(engine="streaming")


def _to_pandas(df: pl.DataFrame) -> Any:
    # dates become pandas datetimes so GE's comparisons work; nulls stay nulls
    return df.with_columns(pl.col(pl.Date).cast(pl.Datetime("us"))).to_pandas()


def _present(raw: pl.LazyFrame, conformed: pl.LazyFrame, contract: Contract) -> tuple[
    list[str], list[str], list[str]
]:
    """(present, missing, extra) columns of ``raw``; checks ``conformed``'s shape."""
    missing, extra = check_columns(raw.collect_schema(), contract)
    present = [n for n in contract.columns if n not in missing]
    if list(conformed.collect_schema().names()) != present:
        raise ContractViolation(
            f"dataset '{contract.dataset}': the conformed frame does not have the contract's "
            "columns; pass conform(raw, contract)"
        )
    return present, missing, extra


def validate(
    raw: pl.LazyFrame,
    conformed: pl.LazyFrame,
    contract: Contract,
    *,
    expectations_dir: Path | None = None,
    evidence_rows: int = 100_000,
    chunk_rows: int = 250_000,
) -> ValidationReport:
    """Validate ``raw`` against ``contract``; see the module docstring for how.

    ``conformed`` must be ``conform(raw, contract)`` (its columns are checked). Missing and
    extra columns are reported as failed rules; ``check`` validates a file whose columns
    may not match (it conforms the declared columns that are present). Equivalent to
    ``validation_report(raw, conformed, contract, validation_counts(raw, contract)
    .collect(engine="streaming"))``.
    """
    _present(raw, conformed, contract)
    counts = validation_counts(raw, contract).collect(engine="streaming")
    return validation_report(
        raw,
        conformed,
        contract,
        counts,
        expectations_dir=expectations_dir,
        evidence_rows=evidence_rows,
        chunk_rows=chunk_rows,
    )


def validation_report(
    raw: pl.LazyFrame,
    conformed: pl.LazyFrame,
    contract: Contract,
    counts: pl.DataFrame,
    *,
    expectations_dir: Path | None = None,
    evidence_rows: int = 100_000,
    chunk_rows: int = 250_000,
) -> ValidationReport:
    """``validate``, given ``counts``: the collected ``validation_counts(raw, contract)``.

    Reads ``raw`` again only when a row rule fails (GE evidence rows) or when user
    expectations exist.
    """
    present, missing, extra = _present(raw, conformed, contract)
    if counts.height != 1 or "rows" not in counts.columns:
        raise ContractError("validation_report: pass validation_counts(raw, contract), collected")
    rules: list[RuleResult] = [
        RuleResult(rule="column_present", column=n, failed_count=1) for n in missing
    ]
    if contract.extra_columns == "reject":
        rules += [RuleResult(rule="no_extra_columns", column=n, failed_count=1) for n in extra]

    counted = {k: int(v or 0) for k, v in counts.row(0, named=True).items()}
    rows = counted["rows"]
    schema = raw.collect_schema()
    clamped: dict[str, int] = {}
    per_row_rejects = contract.on_bad_value == "reject"
    for name in present:
        col = contract.columns[name]
        nn = counted.get(f"nn:{name}", 0)
        outside = counted.get(f"in_keys:{name}", 0)
        type_failed = counted[f"raw_nn:{name}"] - nn - outside if f"raw_nn:{name}" in counted else 0
        rules.append(
            RuleResult(
                rule="type", column=name, failed_count=type_failed, rejects=per_row_rejects
            )
        )
        if col.missing is Missing.REJECT:
            rules.append(RuleResult(rule="not_null", column=name, failed_count=rows - nn))
        if col.keys is not None:
            rules.append(
                RuleResult(
                    rule="in_keys", column=name, failed_count=outside, rejects=per_row_rejects
                )
            )
        if col.fixed_bounds is not None:
            clamped[name] = counted[f"clamped:{name}"]
        if col.unique:
            rules.append(
                RuleResult(
                    rule="unique", column=name, failed_count=nn - counted[f"distinct:{name}"]
                )
            )

    ge_results: list[GeResult] = []
    ge_rows = 0
    row_failures = any(r.failed_count for r in rules if r.rule in ("type", "not_null", "in_keys"))
    if present and row_failures:
        suite = [c for c in build_suite(contract) if c["meta"]["column"] in present]
        evidence = _evidence_frame(raw, schema, contract, present, evidence_rows)
        ge_rows += evidence.height
        runner = _GeRunner(suite, f"{contract.dataset}-contract")
        for cfg, (etype, _, ok, n, bad) in zip(
            suite, _ge_counts(runner.run(_to_pandas(evidence))), strict=True
        ):
            ge_results.append(
                GeResult(
                    expectation=f"{etype}:{cfg['meta']['rule']}",
                    column=cfg["meta"]["column"],
                    success=ok,
                    element_count=n,
                    unexpected_count=bad,
                )
            )

    user = load_user_expectations(expectations_dir, contract.dataset)
    if user and not missing:
        user_results, user_rows = _run_user(conformed, user, contract.dataset, chunk_rows)
        ge_results += user_results
        ge_rows += user_rows
        for r in user_results:
            rules.append(
                RuleResult(
                    rule=f"user:{r.expectation}",
                    column=r.column,
                    failed_count=r.unexpected_count
                    if r.unexpected_count is not None
                    else int(not r.success),
                )
            )

    report = ValidationReport(
        dataset=contract.dataset,
        contract_version=contract.version,
        rows=rows,
        rules=rules,
        clamped=clamped,
        ge_rows_checked=ge_rows,
        ge_results=ge_results,
    )
    log.info(
        "validated dataset %s: %d rows, %d failed rules",
        contract.dataset,
        rows,
        len(report.failures),
    )
    return report


def _run_user(
    conformed: pl.LazyFrame, configs: list[dict[str, Any]], dataset: str, chunk_rows: int
) -> tuple[list[GeResult], int]:
    runner = _GeRunner(configs, f"{dataset}-user")
    totals: list[list[Any]] = [
        [c["type"], c["kwargs"].get("column"), True, 0, None] for c in configs
    ]
    rows = 0
    for chunk in conformed.collect_batches(chunk_size=chunk_rows, engine="streaming"):
        if chunk.height == 0:
            continue
        rows += chunk.height
        for tot, (_, _, ok, n, bad) in zip(
            totals, _ge_counts(runner.run(_to_pandas(chunk))), strict=True
        ):
            tot[2] = tot[2] and ok
            tot[3] += n or 0
            if bad is not None:
                tot[4] = (tot[4] or 0) + bad
    results = [
        GeResult(
            expectation=str(t[0]),
            column=t[1] if isinstance(t[1], str) else None,
            success=bool(t[2]),
            element_count=t[3] if t[3] else None,
            unexpected_count=t[4],
            source="user",
        )
        for t in totals
    ]
    return results, rows


def check(
    raw: pl.LazyFrame, contract: Contract, *, expectations_dir: Path | None = None
) -> ValidationReport:
    """Validate ``raw`` even when its columns do not match: everything in one report."""
    schema = raw.collect_schema()
    present = [n for n in contract.columns if n in schema]
    conformed = raw.select(conform_expr(n, contract.columns[n], schema[n]) for n in present)
    return validate(raw, conformed, contract, expectations_dir=expectations_dir)
