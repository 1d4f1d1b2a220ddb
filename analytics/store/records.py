"""Records the pipeline exchanges with the aggregate store besides releases: object
versions, runs and budget reservations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from privacy.budget import Loss

RunStatus = Literal[
    "running",  # started, not finished
    "completed",  # validated, masked, released and published
    "rejected",  # bad input: quarantined with a counts-only reason
    "masked",  # validated and masked; no release of its own (release.per_file: false)
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

    def columns(self) -> dict[str, str]:
        """The columns that name this version in the store's tables (ledger, releases, runs,
        published objects): bucket, key and etag."""
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag}


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


@dataclass(frozen=True)
class Reservation:
    """A ``reserved`` ledger entry: budget set aside for one object version's releases."""

    id: int
    dataset: str
    run_id: str
    obj: ObjectVersion
    loss: Loss
    created_at: datetime
    window_start: datetime | None = None


#: the files a dataset's runs validated and masked: the runs ended in one of these
MASKED_STATUSES = ("completed", "masked", "budget_exhausted")


@dataclass(frozen=True)
class DatasetFile:
    """A file of a dataset that a run validated and masked: its object version, its rows
    (exact: operator information) and when its run finished."""

    obj: ObjectVersion
    rows: int | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Coverage:
    """What a dataset release read: how the files relate, the files, and the public bound
    on one person's rows over them. Its idempotency key is ``obj``: one release per
    dataset and set of files, so a release over nothing new spends nothing."""

    dataset: str
    files_mode: Literal["append", "snapshot"]
    files: tuple[ObjectVersion, ...]
    max_rows_per_unit: int | None
    #: the first day of the public time window the release read (None: every row)
    since: date | None = None

    @property
    def obj(self) -> ObjectVersion:
        """The object version that names this release in the store's tables (ledger,
        releases, runs, published objects): ``datasets/<dataset>/release``, its etag a
        digest of the versions read."""
        text = "\n".join(sorted(f"{o.bucket}/{o.key}@{o.etag}" for o in self.files))
        since = "" if self.since is None else self.since.isoformat()
        digest = hashlib.sha256(
            f"{self.files_mode}|{self.max_rows_per_unit}|{since}|{text}".encode()
        )
        bucket = self.files[0].bucket if self.files else ""
        return ObjectVersion(bucket, f"{DATASET_RELEASE_PREFIX}{self.dataset}/release",
                             digest.hexdigest()[:32])


#: the key prefix of the object versions that name dataset releases
DATASET_RELEASE_PREFIX = "datasets/"
