"""Counts-only reports of what validation and masking did to a file.

A ``PrivacyReport`` is written beside the masked Parquet (``model_dump_json()``) and shown
as a Prefect artifact (``to_markdown()``): row counts, column names and rule names only.

>>> report = PrivacyReport(dataset="d", contract_version=2, rows_in=10, rows_out=8,
...                        rows_suppressed=2)
>>> report.to_markdown().splitlines()[0]
'# Privacy report: `d` (contract v2)'
"""

from __future__ import annotations

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from privacy import anonymity
from privacy.validation import ValidationReport


class MaskSummary(BaseModel):
    """What masking does to the columns of a contract (no data needed)."""

    model_config = ConfigDict(frozen=True)

    dropped: list[str] = Field(default_factory=list)
    pseudonymized: list[str] = Field(default_factory=list)
    generalized: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    quasi_identifiers: list[str] = Field(default_factory=list)
    k: int = 1
    l_diversity: tuple[str, int] | None = None
    drop_row_columns: list[str] = Field(default_factory=list)


class RuleCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    column: str | None = None
    failed_count: int


class PrivacyReport(BaseModel):
    """What one run did to one file, in counts."""

    dataset: str
    contract_version: int
    rows_in: int = Field(ge=0)
    rows_out: int = Field(ge=0)
    rows_suppressed: int = Field(ge=0, description="rows removed by k-anonymity/l-diversity")
    rows_dropped_missing: int = Field(
        default=0, ge=0, description="rows dropped by missing: drop_row"
    )
    columns_dropped: list[str] = Field(default_factory=list)
    columns_pseudonymized: list[str] = Field(default_factory=list)
    columns_generalized: list[str] = Field(default_factory=list)
    quasi_identifiers: list[str] = Field(default_factory=list)
    k_required: int = 1
    achieved_k: int | None = None
    l_required: int | None = None
    achieved_l: int | None = None
    validation_rules: list[RuleCount] = Field(default_factory=list)
    clamped: dict[str, int] = Field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        summary: MaskSummary,
        validation: ValidationReport | None,
        dataset: str,
        contract_version: int,
        rows_in: int,
        rows_out: int,
        rows_suppressed: int,
        rows_dropped_missing: int = 0,
        achieved_k: int | None = None,
        achieved_l: int | None = None,
    ) -> PrivacyReport:
        return cls(
            dataset=dataset,
            contract_version=contract_version,
            rows_in=rows_in,
            rows_out=rows_out,
            rows_suppressed=rows_suppressed,
            rows_dropped_missing=rows_dropped_missing,
            columns_dropped=summary.dropped,
            columns_pseudonymized=summary.pseudonymized,
            columns_generalized=summary.generalized,
            quasi_identifiers=summary.quasi_identifiers,
            k_required=summary.k,
            achieved_k=achieved_k,
            l_required=summary.l_diversity[1] if summary.l_diversity else None,
            achieved_l=achieved_l,
            validation_rules=[
                RuleCount(rule=r.rule, column=r.column, failed_count=r.failed_count)
                for r in (validation.rules if validation else [])
            ],
            clamped=dict(validation.clamped) if validation else {},
        )

    def to_markdown(self) -> str:
        def names(cols: list[str]) -> str:
            return ", ".join(f"`{c}`" for c in cols) if cols else "none"

        k_line = (
            f"{self.achieved_k} (required {self.k_required})"
            if self.achieved_k is not None
            else f"n/a (no quasi-identifiers or no rows; required {self.k_required})"
        )
        lines = [
            f"# Privacy report: `{self.dataset}` (contract v{self.contract_version})",
            "",
            "| | |",
            "|---|---|",
            f"| rows in | {self.rows_in} |",
            f"| rows dropped (missing values) | {self.rows_dropped_missing} |",
            f"| rows suppressed (small classes) | {self.rows_suppressed} |",
            f"| rows out | {self.rows_out} |",
            f"| columns dropped | {names(self.columns_dropped)} |",
            f"| columns pseudonymized | {names(self.columns_pseudonymized)} |",
            f"| columns generalized | {names(self.columns_generalized)} |",
            f"| quasi-identifiers | {names(self.quasi_identifiers)} |",
            f"| achieved k | {k_line} |",
        ]
        if self.l_required is not None:
            lines.append(f"| achieved l | {self.achieved_l} (required {self.l_required}) |")
        failed = [r for r in self.validation_rules if r.failed_count]
        lines += [
            "",
            f"Validation: {len(self.validation_rules)} rules checked, {len(failed)} failed.",
        ]
        if failed:
            lines += ["", "| rule | column | failing rows |", "|---|---|---|"]
            lines += [f"| {r.rule} | {r.column or ''} | {r.failed_count} |" for r in failed]
        clamped = {m: n for m, n in self.clamped.items() if n}
        if clamped:
            lines += [
                "",
                "Clamped to contract bounds: "
                + ", ".join(f"`{m}` {n}" for m, n in clamped.items()),
            ]
        return "\n".join(lines) + "\n"


def achieved_k(masked: pl.LazyFrame, qis: list[str]) -> int | None:
    """Smallest equivalence class over ``qis`` in the masked output (None: no QIs or no rows)."""
    present = set(masked.collect_schema().names())
    cols = [q for q in qis if q in present]
    return anonymity.achieved_k(masked, cols)
