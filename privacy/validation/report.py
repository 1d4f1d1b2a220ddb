"""The counts-only outcome of validating a file: per rule and column, how many rows fail.

>>> report = ValidationReport(dataset="d", contract_version=1, rows=10, rules=[
...     RuleResult(rule="type", column="hours", failed_count=2, rejects=False),
...     RuleResult(rule="not_null", column="team", failed_count=1),
... ])
>>> report.ok, report.values_nulled
(False, 2)
>>> report.reason()
"dataset 'd': 1 rule failed on 10 rows: not_null on 'team': 1 row"
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


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
