"""Validate a file against its contract: one streaming pass of counts, then a report.

``validation_counts`` is the pass (a lazy one-row frame, in bounded memory on large files);
``validation_report`` turns its collected result into a ``ValidationReport``, calling
Great Expectations only when a row rule fails or user expectations exist; ``validate``
does both and ``check`` also takes a file whose columns do not match. See
docs/architecture.md, "Validation".

>>> from privacy.contract import Contract
>>> contract = Contract.model_validate({"dataset": "d", "rows_are_people": True,
...     "budget": {"epsilon_cap": 1}, "columns": {"n": {"role": "dimension", "type": "integer"}}})
>>> report = check(pl.LazyFrame({"n": ["1", "2", "three"]}), contract)
>>> report.ok, report.notes()
(True, "1 value set to null, then handled by the column's missing policy: 1 unreadable value in 'n'")
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from privacy.contract import Contract, Missing
from privacy.errors import ContractError, ContractViolation
from privacy.validation.conformance import _OUT, _RAW, _can_fail, _checked, check_columns, conform_expr
from privacy.validation.expectations import contract_results, load_user_expectations, user_results
from privacy.validation.report import GeResult, RuleResult, ValidationReport

log = logging.getLogger("privacy.validation")

#: the rules whose failures GE's evidence rows explain
_ROW_RULES = ("type", "not_null", "in_keys")


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
    """Validate ``raw`` against ``contract`` (docs/architecture.md, "Validation").

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


def _column_rules(missing: list[str], extra: list[str], contract: Contract) -> list[RuleResult]:
    rules = [RuleResult(rule="column_present", column=n, failed_count=1) for n in missing]
    if contract.extra_columns == "reject":
        rules += [RuleResult(rule="no_extra_columns", column=n, failed_count=1) for n in extra]
    return rules


def _row_rules(counted: dict[str, int], present: list[str], contract: Contract) -> list[RuleResult]:
    """The built-in rules of each present column, from the counts of the pre-pass."""
    rows = counted["rows"]
    per_row_rejects = contract.on_bad_value == "reject"
    rules: list[RuleResult] = []
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
        if col.unique:
            rules.append(
                RuleResult(
                    rule="unique", column=name, failed_count=nn - counted[f"distinct:{name}"]
                )
            )
    return rules


def _user_rule(result: GeResult) -> RuleResult:
    failed = result.unexpected_count if result.unexpected_count is not None else int(not result.success)
    return RuleResult(rule=f"user:{result.expectation}", column=result.column, failed_count=failed)


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
    counted = {k: int(v or 0) for k, v in counts.row(0, named=True).items()}
    rules = _column_rules(missing, extra, contract) + _row_rules(counted, present, contract)
    clamped = {
        n: counted[f"clamped:{n}"] for n in present if contract.columns[n].fixed_bounds is not None
    }
    ge_results: list[GeResult] = []
    ge_rows = 0
    if present and any(r.failed_count for r in rules if r.rule in _ROW_RULES):
        ge_results, ge_rows = contract_results(raw, contract, present, evidence_rows)
    user = load_user_expectations(expectations_dir, contract.dataset)
    if user and not missing:
        extra_results, extra_rows = user_results(conformed, user, contract.dataset, chunk_rows)
        ge_results += extra_results
        ge_rows += extra_rows
        rules += [_user_rule(r) for r in extra_results]
    report = ValidationReport(
        dataset=contract.dataset,
        contract_version=contract.version,
        rows=counted["rows"],
        rules=rules,
        clamped=clamped,
        ge_rows_checked=ge_rows,
        ge_results=ge_results,
    )
    log.info(
        "validated dataset %s: %d rows, %d failed rules",
        contract.dataset,
        counted["rows"],
        len(report.failures),
    )
    return report


def check(
    raw: pl.LazyFrame, contract: Contract, *, expectations_dir: Path | None = None
) -> ValidationReport:
    """Validate ``raw`` even when its columns do not match: everything in one report."""
    schema = raw.collect_schema()
    present = [n for n in contract.columns if n in schema]
    conformed = raw.select(conform_expr(n, contract.columns[n], schema[n]) for n in present)
    return validate(raw, conformed, contract, expectations_dir=expectations_dir)
