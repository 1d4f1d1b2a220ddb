"""The dataset contract: whose rows they are, the budget, the columns and the analyses.

>>> contract = Contract.model_validate({
...     "dataset": "employees", "rows_are_people": True, "budget": {"epsilon_cap": 10},
...     "columns": {"hours": {"role": "measure", "type": "float", "bounds": [0, 60]}},
... })
>>> contract.measures, [a.kind for a in contract.analyses]
(['hours'], ['summary'])
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from privacy.contract.analyses import (
    Analysis,
    ComparisonAnalysis,
    CorrelationAnalysis,
    DistributionAnalysis,
    ForecastAnalysis,
    SummaryAnalysis,
    TrendAnalysis,
    _default_analyses,
)
from privacy.contract.columns import Column
from privacy.contract.dataset import Anonymity, Budget, CsvOptions, DatasetRelease
from privacy.contract.enums import Role, _Strict
from privacy.names import DATASET_RE as NAME_RE

#: the most rows a dataset release reads (OpenDP's max_length is a 32-bit count)
_MAX_DATASET_ROWS = 2**32 - 1


class Contract(_Strict):
    dataset: str
    version: int = Field(default=1, ge=1)
    description: str | None = None
    #: the column that names the person every row belongs to (the privacy unit)
    privacy_unit: str | None = None
    #: declare instead of ``privacy_unit`` that every row is a different person
    rows_are_people: bool = False
    #: rows one person may contribute to a file; more are dropped at random before release
    max_rows_per_unit: int = Field(default=1, ge=1, le=10_000)
    #: a value that cannot be read, lies outside its public keys or is NaN/±inf: ``null``
    #: sets it to null (then the column's ``missing`` policy applies; the operator report
    #: counts it), ``reject`` refuses the whole file
    on_bad_value: Literal["null", "reject"] = "null"
    #: datasets whose contracts name the same linkage group share pseudonym tokens (the
    #: same person has the same token in each); otherwise every dataset has its own key
    linkage_group: str | None = None
    #: public upper bound on the rows of one file: OpenDP's max_length, which float sums'
    #: noise grows with; keep it tight. A larger file is refused before any release.
    max_rows_per_file: int = Field(default=10_000_000, ge=1, le=1_000_000_000)
    budget: Budget
    #: how a dataset's files relate: ``append`` (each file adds rows: events, projects,
    #: tests) or ``snapshot`` (each file is the whole population at a date)
    files: Literal["append", "snapshot"] = "append"
    #: dataset releases (over every file so far, or the latest snapshot) and whether each
    #: file is also released on its own
    release: DatasetRelease = Field(default_factory=DatasetRelease)
    anonymity: Anonymity = Field(default_factory=Anonymity)
    #: columns present in a file but not in the contract: reject the file, or drop them
    extra_columns: Literal["reject", "drop"] = "reject"
    csv: CsvOptions = Field(default_factory=CsvOptions)
    columns: dict[str, Column] = Field(min_length=1)
    analyses: list[Analysis] = Field(default_factory=lambda: _default_analyses())

    @field_validator("dataset", "linkage_group")
    @classmethod
    def _name(cls, v: str | None, info: ValidationInfo) -> str | None:
        """The dataset and the linkage group are named by one rule (``privacy.names``)."""
        if v is not None and not NAME_RE.fullmatch(v):
            raise ValueError(f"{info.field_name} names use letters, digits, '-' and '_' (at most 64)")
        return v

    @model_validator(mode="after")
    def _unit(self) -> Contract:
        """Who a row belongs to is declared, never assumed (docs/architecture.md,
        invariant 5, public-parameters)."""
        if self.privacy_unit is None and not self.rows_are_people:
            raise ValueError(
                "the contract does not say whose rows these are: name the column of the "
                "person each row belongs to (privacy_unit: <column> with max_rows_per_unit: "
                "<rows one person may have in a file>), or declare rows_are_people: true if "
                "every row is a different person"
            )
        if self.privacy_unit is not None and self.rows_are_people:
            raise ValueError(
                "privacy_unit and rows_are_people: true contradict each other: keep one"
            )
        if self.privacy_unit is not None and "max_rows_per_unit" not in self.model_fields_set:
            raise ValueError(
                f"privacy_unit '{self.privacy_unit}' needs max_rows_per_unit: the most rows one "
                "person may contribute to a file (rows beyond it are dropped at random before "
                "release; the noise grows with it)"
            )
        if self.rows_are_people and self.max_rows_per_unit != 1:
            raise ValueError(
                "rows_are_people: true means one row per person: drop max_rows_per_unit, or "
                "name the person column as privacy_unit"
            )
        if self.rows_are_people and self.release.max_rows_per_unit not in (None, 1):
            raise ValueError(
                "rows_are_people: true means one row per person in the whole dataset: drop "
                "release.max_rows_per_unit, or name the person column as privacy_unit"
            )
        eps = self.release.epsilon
        if eps is not None and self.budget.accounting == "zcdp":
            raise ValueError(
                "accounting 'zcdp' spends budget.rho_per_release on every release: drop "
                "release.epsilon"
            )
        if eps is not None and eps > self.budget.epsilon_cap:
            raise ValueError("release.epsilon cannot exceed budget.epsilon_cap")
        return self

    @model_validator(mode="after")
    def _references(self) -> Contract:
        cols = self.columns
        if self.privacy_unit is not None:
            if self.privacy_unit not in cols:
                raise ValueError(f"privacy_unit '{self.privacy_unit}' is not a declared column")
            if cols[self.privacy_unit].mask_action == "drop":
                raise ValueError(
                    f"privacy_unit '{self.privacy_unit}' must be kept or pseudonymized, "
                    "not dropped: set action: pseudonymize"
                )
        for qi in self.anonymity.quasi_identifiers or []:
            _need(cols, qi, (Role.QUASI_IDENTIFIER, Role.DIMENSION, Role.TIME), "anonymity")
        for i, a in enumerate(self.analyses):
            _check_analysis(cols, a, f"analyses.{i}")
        if self.release.window is not None:
            _need(cols, self.release.window.column, (Role.TIME,), "release.window")
        return self

    # ----------------------------------------------------------------- convenience

    def columns_with(self, *roles: Role) -> list[str]:
        return [n for n, c in self.columns.items() if c.role in roles]

    @property
    def measures(self) -> list[str]:
        return self.columns_with(Role.MEASURE)

    @property
    def quasi_identifiers(self) -> list[str]:
        if self.anonymity.quasi_identifiers is not None:
            return list(self.anonymity.quasi_identifiers)
        return self.columns_with(Role.QUASI_IDENTIFIER)

    @property
    def dataset_rows_per_unit(self) -> int:
        """Rows one person may contribute to a dataset release (over all its files)."""
        return self.release.max_rows_per_unit or self.max_rows_per_unit

    @property
    def dataset_release_epsilon(self) -> float:
        """ε one dataset release spends."""
        return self.release.epsilon or self.budget.epsilon_per_release

    def for_dataset_release(self, files: int) -> Contract:
        """This contract as a release over ``files`` files of the dataset sees it: each
        person's rows bounded by ``release.max_rows_per_unit`` over all of them, at most
        ``files`` × ``max_rows_per_file`` rows (the number of files is public: operators
        drop them), ε from ``release.epsilon``. Everything else, the analyses above all, is
        the contract's."""
        rows = min(max(files, 1) * self.max_rows_per_file, _MAX_DATASET_ROWS)
        budget = self.budget
        if budget.accounting == "pure":
            budget = budget.model_copy(
                update={"epsilon_per_release": self.dataset_release_epsilon}
            )
        return self.model_copy(update={
            "max_rows_per_unit": self.dataset_rows_per_unit,
            "max_rows_per_file": rows,
            "budget": budget,
        })

    def fingerprint(self) -> str:
        """A stable hash of everything that shapes masking and DP calibration."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _need(cols: dict[str, Column], name: str, roles: tuple[Role, ...], where: str) -> None:
    if name not in cols:
        raise ValueError(f"{where}: '{name}' is not a declared column")
    if cols[name].role not in roles:
        wanted = " or ".join(r.value for r in roles)
        raise ValueError(f"{where}: '{name}' must have role {wanted}")


def _check_analysis(cols: dict[str, Column], a: Any, where: str) -> None:
    """The columns analysis ``a`` names exist and have the roles it needs."""
    if isinstance(a, SummaryAnalysis):
        for m in a.measures or []:
            _need(cols, m, (Role.MEASURE,), where)
    elif isinstance(a, DistributionAnalysis):
        _need(cols, a.measure, (Role.MEASURE,), where)
        if a.bins is not None and (len(a.bins) < 2 or sorted(a.bins) != a.bins):
            raise ValueError(f"{where}: bins must be at least two increasing edges")
    elif isinstance(a, ComparisonAnalysis):
        _need(cols, a.measure, (Role.MEASURE,), where)
        _need(cols, a.by, (Role.DIMENSION, Role.QUASI_IDENTIFIER), where)
    elif isinstance(a, TrendAnalysis | ForecastAnalysis):
        _need(cols, a.time, (Role.TIME,), where)
        single = [a.measure] if isinstance(a, ForecastAnalysis) and a.measure else []
        ms = a.measures if isinstance(a, TrendAnalysis) else single
        for m in ms:
            _need(cols, m, (Role.MEASURE,), where)
    elif isinstance(a, CorrelationAnalysis):
        for m in a.measures:
            _need(cols, m, (Role.MEASURE,), where)
