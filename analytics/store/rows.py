"""The rows the read-only API returns (``analytics.store.queries.ReadOnlyStore``): plain
frozen dataclasses holding aggregates, counts and bookkeeping, never a value read from a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "BudgetStatus",
    "DatasetSummary",
    "LedgerEntry",
    "PublishedValueRow",
    "ReleaseInfo",
    "ReleaseSetInfo",
    "RunRow",
    "TermsChange",
    "ValueRow",
]

T = TypeVar("T", bound="DataclassInstance")


def from_columns(cls: type[T], columns: Mapping[Any, Any], **given: Any) -> T:
    """A ``cls`` whose fields not ``given`` are the ``columns`` of the same name (a row of
    the store, ``row._mapping``); columns no field is named after are left out."""
    named = {f.name: columns[f.name] for f in fields(cls) if f.name in columns}
    return cls(**{**named, **given})


class _PinnedUnit:
    """Whose rows a dataset's are, from its pinned ``privacy_unit`` and ``max_rows_per_unit``
    (fields of the dataclasses below)."""

    privacy_unit: str | None
    max_rows_per_unit: int | None

    @property
    def rows_are_people(self) -> bool:
        return self.max_rows_per_unit is not None and self.privacy_unit is None


@dataclass(frozen=True)
class BudgetStatus(_PinnedUnit):
    """A dataset's privacy budget in its current window (all time under ``lifetime``).

    ``spent`` is committed spend; ``reserved`` is held by runs still in progress;
    ``remaining = cap - spent`` (never below 0). ``exhausted``: one more file at ε and δ
    per release would take spent plus reserved over a cap, the test the writer refuses with
    (``analytics.store.spend``).
    """

    dataset: str
    policy: str
    window: str | None
    window_start: datetime | None
    epsilon_cap: float
    epsilon_spent: float
    epsilon_reserved: float
    epsilon_remaining: float
    delta_cap: float
    delta_spent: float
    delta_reserved: float
    delta_remaining: float
    epsilon_per_release: float
    exhausted: bool
    #: the pinned privacy unit column; None when rows are people (or not pinned yet)
    privacy_unit: str | None = None
    #: the pinned rows per unit; None only for a dataset registered before units were
    #: pinned that no contract has been seen for since
    max_rows_per_unit: int | None = None
    #: δ the next file spends, from the latest contract (like epsilon_per_release)
    delta_per_release: float = 0.0
    #: "pure" (ε adds up) or "zcdp" (ρ adds up; every ε above is then OpenDP's conversion
    #: of the ρ spent at the δ the thresholds left: spent, what the reservations add to it,
    #: and what the next release adds)
    accounting: str = "pure"
    rho_spent: float | None = None
    rho_reserved: float | None = None
    rho_per_release: float | None = None
    #: releases of the current size the cap still pays for (reservations counted)
    releases_remaining: int | None = None
    #: committed releases per day since the first, and the day the budget runs out at
    #: that rate (None: fewer than two releases, or a policy "window" budget)
    releases_per_day: float | None = None
    runs_out_on: date | None = None


@dataclass(frozen=True)
class DatasetSummary(_PinnedUnit):
    name: str
    contract_version: int
    policy: str
    window: str | None
    last_release_at: datetime | None
    releases: int
    runs: int
    rows_processed: int
    epsilon_cap: float
    epsilon_spent: float
    epsilon_remaining: float
    delta_cap: float
    delta_spent: float
    exhausted: bool
    #: pinned privacy unit and rows per unit, as on BudgetStatus
    privacy_unit: str | None = None
    max_rows_per_unit: int | None = None


@dataclass(frozen=True)
class TermsChange:
    """One entry of a dataset's append-only log of pinned budget terms, newest first in
    ``ReadOnlyStore.terms_changes``: its first registration (``old`` None, actor
    "pipeline") and every operator change (``privacy-analytics budget set``).

    ``old``/``new`` read as the CLI prints them: numbers exactly (``50``, ``1e-06``), the
    window ``none`` under the lifetime policy, the privacy unit a column name or
    ``rows are people``. ``weakens``: the change raises a cap or changes the policy, window
    or privacy unit. ``forced``: it weakens the guarantee and was applied with ``--force``.
    """

    id: int
    dataset: str
    changed_at: datetime
    actor: str
    reason: str
    setting: str  # "epsilon_cap" | "delta_cap" | "policy" | "window" | "privacy_unit" | "max_rows_per_unit"
    old: str | None  # None at first registration
    new: str
    weakens: bool
    forced: bool

    @classmethod
    def of_columns(cls, columns: Mapping[Any, Any]) -> TermsChange:
        """The entry from its ``terms_changes`` columns (``old_value``, ``new_value``)."""
        return from_columns(cls, columns, old=columns["old_value"], new=columns["new_value"],
                            weakens=bool(columns["weakens"]), forced=bool(columns["forced"]))


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger entry. ``state`` is ``expired`` for a reservation of a crashed run."""

    id: int
    dataset: str
    run_id: str
    bucket: str
    key: str
    etag: str
    epsilon: float
    delta: float
    state: str
    window_start: datetime | None
    created_at: datetime
    committed_at: datetime | None
    cancelled_at: datetime | None
    #: zcdp: the entry's ρ (``epsilon`` is then what it alone converts to at the δ cap)
    rho: float | None = None


@dataclass(frozen=True)
class PublishedValueRow:
    """A value as it belongs to a release (see ``ReleaseInfo.values``)."""

    metric: str
    column: str | None
    group: dict[str, str]
    value: float
    lower: float | None
    upper: float | None
    scale: float | None


@dataclass(frozen=True)
class ReleaseInfo:
    id: int
    dataset: str
    analysis: str
    name: str
    mechanism: str
    epsilon: float | None
    delta: float | None
    contract_version: int
    bucket: str
    key: str
    etag: str
    run_id: str
    created_at: datetime
    values: tuple[PublishedValueRow, ...] = ()
    insights: tuple[str, ...] = ()
    #: the ledger entry (release set) the release belongs to
    ledger_id: int | None = None
    #: zcdp: the release's ρ (``epsilon`` is what it alone converts to at the δ cap)
    rho: float | None = None


@dataclass(frozen=True)
class ValueRow:
    """A published value of the latest release of its analysis, flattened for tables/plots."""

    release_id: int
    release_name: str
    analysis: str
    metric: str
    column: str | None
    group: dict[str, str] = field(hash=False)
    value: float
    lower: float | None
    upper: float | None
    scale: float | None
    epsilon: float | None
    created_at: datetime
    #: the ledger entry (release set) the value's release belongs to
    ledger_id: int | None = None


@dataclass(frozen=True)
class ReleaseSetInfo:
    """One published release set of a dataset, newest first in
    ``ReadOnlyStore.release_sets``: a dataset release (over all files so far, or the latest
    snapshot) or one file's own release. Public bookkeeping: how many files a dataset release
    read, never how many rows."""

    ledger_id: int
    #: "dataset" (a release over the dataset as a whole) or "file"
    kind: str
    #: the file's landing key, or ``datasets/<dataset>/release``
    key: str
    created_at: datetime
    epsilon: float
    delta: float
    #: dataset releases: files read, how they relate and the bound on one person's rows
    files: int | None = None
    files_mode: str | None = None
    max_rows_per_unit: int | None = None
    #: the first day of the public time window a dataset release read (None: every row)
    since: date | None = None

    @property
    def label(self) -> str:
        """How a selector names it, e.g. "dataset release (3 files), 2026-12-01 15:04"."""
        when = self.created_at.strftime("%Y-%m-%d %H:%M")
        if self.kind == "dataset":
            n = self.files or 0
            what = "latest snapshot" if self.files_mode == "snapshot" else (
                f"{n} file{'' if n == 1 else 's'}")
            if self.since is not None:
                what += f", rows since {self.since.isoformat()}"
            return f"dataset release ({what}), {when}"
        return f"file {self.key.rsplit('/', 1)[-1]}, {when}"


@dataclass(frozen=True)
class RunRow:
    """One pipeline run (counts only), newest first in ``ReadOnlyStore.runs``.

    Its counts are exact: operator information, not differentially private; never show
    them to viewers.
    """

    run_id: str
    dataset: str
    bucket: str
    key: str
    etag: str
    size: int | None
    status: str
    rows_in: int | None
    rows_out: int | None
    rows_suppressed: int | None
    columns_dropped: int | None
    columns_pseudonymized: int | None
    columns_generalized: int | None
    epsilon_spent: float
    delta_spent: float
    reason: str | None
    flow_run_url: str | None
    started_at: datetime
    finished_at: datetime | None
    updated_at: datetime
    #: cell values set to null (unreadable, outside public keys, NaN/inf); exact count
    values_nulled: int | None = None
    #: one-line, counts-only note for operators
    notes: str | None = None
