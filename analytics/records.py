"""Records the pipeline writes to the aggregate store besides releases: runs and object versions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

RunStatus = Literal[
    "running",  # started, not finished
    "completed",  # validated, masked, released and published
    "rejected",  # bad input: quarantined with a counts-only reason
    "budget_exhausted",  # validated and masked; release refused by the budget
    "terms_changed",  # validated and masked; release refused: the contract changes pinned terms
    "duplicate",  # this object version was already published; nothing new was done
    "failed",  # an unexpected error (storage down, bug); the file stays where it was
]


@dataclass(frozen=True)
class ObjectVersion:
    """The idempotency key of a pipeline run: one object version is published once."""

    bucket: str
    key: str
    etag: str
    size: int | None = None

    @property
    def dataset(self) -> str:
        # keys look like landing/<dataset>/<file>
        parts = self.key.split("/")
        return parts[1] if len(parts) >= 3 else ""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RunRecord:
    """One pipeline run as shown on the dashboard's runs page and by `privacy-analytics runs`.

    Counts only: no field ever holds a value read from a row. ``values_nulled`` counts the
    cell values the pipeline set to null because they could not be read, lay outside their
    public keys or were NaN/inf; ``notes`` is a one-line, counts-only note for operators.
    Exact counts are operator information, never shown to viewers.
    """

    run_id: str
    dataset: str
    obj: ObjectVersion
    status: RunStatus = "running"
    rows_in: int | None = None
    rows_out: int | None = None
    rows_suppressed: int | None = None
    columns_dropped: int | None = None
    columns_pseudonymized: int | None = None
    columns_generalized: int | None = None
    epsilon_spent: float = 0.0
    delta_spent: float = 0.0
    reason: str | None = None
    flow_run_url: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None
    values_nulled: int | None = None
    notes: str | None = None
