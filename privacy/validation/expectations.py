"""Great Expectations for a contract: its row rules as a GE suite, user suites stored beside
the contract, and a runner that copies out names, flags and counts only, never a value.

GE sees the evidence rows only (rows that break a row rule, at most ``evidence_rows``);
user expectations run on every row, in chunks. See docs/architecture.md, "Validation".

>>> from privacy.contract import parse_contract
>>> contract = parse_contract('''
... {dataset: d, rows_are_people: true, budget: {epsilon_cap: 1},
...  columns: {hours: {role: measure, type: float, bounds: [0, 60], missing: reject}}}
... ''')
>>> [(e["type"], e["meta"]["rule"]) for e in build_suite(contract)][1:]
[('expect_column_values_to_not_be_null', 'not_null'), ('expect_column_values_to_be_between', 'clamped')]
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl

from privacy.contract import Contract, Missing, Role
from privacy.errors import ContractError
from privacy.validation.conformance import _raw_present, conform_expr
from privacy.validation.report import GeResult

#: GE result format: counts only, never a value, an index or a row
GE_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unique_unexpected": False,
}
_TYPE_OK = "__type_ok__"


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


def contract_results(
    raw: pl.LazyFrame, contract: Contract, present: list[str], limit: int
) -> tuple[list[GeResult], int]:
    """The contract's suite run by GE on at most ``limit`` evidence rows of ``raw``: its
    results and how many rows GE checked."""
    schema = raw.collect_schema()
    suite = [c for c in build_suite(contract) if c["meta"]["column"] in present]
    evidence = _evidence_frame(raw, schema, contract, present, limit)
    runner = _GeRunner(suite, f"{contract.dataset}-contract")
    results = [
        GeResult(
            expectation=f"{etype}:{cfg['meta']['rule']}",
            column=cfg["meta"]["column"],
            success=ok,
            element_count=n,
            unexpected_count=bad,
        )
        for cfg, (etype, _, ok, n, bad) in zip(
            suite, _ge_counts(runner.run(_to_pandas(evidence))), strict=True
        )
    ]
    return results, evidence.height


def user_results(
    conformed: pl.LazyFrame, configs: list[dict[str, Any]], dataset: str, chunk_rows: int
) -> tuple[list[GeResult], int]:
    """User expectations ``configs`` run by GE on every row of ``conformed``, in chunks of
    ``chunk_rows`` (aggregate expectations are checked per chunk): totals, rows checked."""
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
