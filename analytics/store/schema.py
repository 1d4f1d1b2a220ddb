"""The aggregate store's tables (SQLAlchemy Core), shared by the writer and the read-only API.

Only aggregates, counts and bookkeeping live here: no table has a column for a value read
from a row. Alembic migrations under ``analytics/store/migrations`` create exactly these
tables; a test compares the migrated database with this metadata. The migrations also install
what metadata cannot say: triggers that refuse UPDATE and DELETE on ``terms_changes``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite aggregates (max()) come back as text
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def canonical_group(group: dict[str, str]) -> str:
    """The canonical JSON of a group dict: sorted keys, no spaces (``{}`` when ungrouped)."""
    return json.dumps({str(k): str(v) for k, v in group.items()}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


# ------------------------------------------------------------- columns several tables have


def _id() -> Column[int]:
    return Column("id", Integer, primary_key=True, autoincrement=True)


def _dataset(*, registered: bool = True) -> Column[str]:
    """The dataset a row belongs to; ``registered``: one of ``datasets`` (a foreign key)."""
    fk = [ForeignKey("datasets.name")] if registered else []
    return Column("dataset", String(64), *fk, nullable=False)


def _run_id() -> Column[str]:
    return Column("run_id", String(128), nullable=False)


def _object_version() -> list[Column[str]]:
    """The object version a row is about (``ObjectVersion.columns``): bucket, key, etag."""
    return [
        Column("bucket", String(255), nullable=False),
        Column("key", String(1024), nullable=False),
        Column("etag", String(255), nullable=False),
    ]


def _created_at() -> Column[datetime]:
    return Column("created_at", UTCDateTime, nullable=False)


def _release_id() -> Column[int]:
    return Column("release_id", Integer, ForeignKey("releases.id"), nullable=False)


# ------------------------------------------------------------------------- the tables

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("contract_version", Integer, nullable=False),
    Column("epsilon_cap", Float, nullable=False),
    Column("delta_cap", Float, nullable=False),
    Column("epsilon_per_release", Float, nullable=False),
    Column("policy", String(16), nullable=False),
    Column("window", String(16), nullable=True),
    _created_at(),
    Column("updated_at", UTCDateTime, nullable=False),
    #: the pinned privacy unit column; NULL when rows are people (or not pinned yet)
    Column("privacy_unit", String(255), nullable=True),
    #: the pinned rows per unit; NULL only for a dataset registered before r0002 that no
    #: contract has been seen for since (the next one pins unit and rows)
    Column("max_rows_per_unit", Integer, nullable=True),
    #: δ the next file spends, from the latest contract like epsilon_per_release (not
    #: pinned); NULL only for a row a writer from before r0003 registered
    Column("delta_per_release", Float, nullable=True),
    #: "pure" (ε adds up) or "zcdp" (ρ adds up, the total converted to (ε, δ)); pinned at
    #: the first registration
    Column("accounting", String(8), nullable=False, server_default="pure"),
    #: under zcdp: ρ the next release spends, from the latest contract (not pinned)
    Column("rho_per_release", Float, nullable=True),
    CheckConstraint("epsilon_cap > 0", name="epsilon_cap_positive"),
    CheckConstraint("delta_cap >= 0 AND delta_cap < 1", name="delta_cap_range"),
    CheckConstraint("policy IN ('lifetime', 'window')", name="policy_known"),
)

ledger = Table(
    "ledger",
    metadata,
    _id(),
    _dataset(),
    _run_id(),
    *_object_version(),
    #: pure ε: the entry's ε; zcdp: the ε its ρ alone converts to at the δ cap (shown, never
    #: added up: ρ is)
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    #: zcdp: the entry's ρ (NULL under pure ε)
    Column("rho", Float, nullable=True),
    Column("state", String(16), nullable=False),
    #: start of the calendar window the entry counts in (NULL under the lifetime policy)
    Column("window_start", UTCDateTime, nullable=True),
    _created_at(),
    Column("committed_at", UTCDateTime, nullable=True),
    Column("cancelled_at", UTCDateTime, nullable=True),
    CheckConstraint("epsilon > 0", name="epsilon_positive"),
    CheckConstraint("delta >= 0 AND delta < 1", name="delta_range"),
    CheckConstraint("state IN ('reserved', 'committed', 'cancelled')", name="state_known"),
    Index(None, "dataset", "state", "created_at"),
    Index(None, "run_id"),
)

releases = Table(
    "releases",
    metadata,
    _id(),
    _dataset(),
    Column("ledger_id", Integer, ForeignKey("ledger.id"), nullable=False),
    Column("analysis", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("mechanism", String(64), nullable=False),
    Column("epsilon", Float, nullable=True),  # NULL: post-processing, no extra spend
    Column("delta", Float, nullable=True),
    Column("rho", Float, nullable=True),  # zcdp: the release's ρ (its epsilon as the ledger's)
    Column("contract_version", Integer, nullable=False),
    *_object_version(),
    _run_id(),
    _created_at(),
    Index(None, "dataset", "created_at"),
    Index(None, "dataset", "name", "id"),
    Index(None, "ledger_id"),
)

published_values = Table(
    "published_values",
    metadata,
    _id(),
    _release_id(),
    Column("metric", String(64), nullable=False),
    Column("column", String(255), nullable=True),
    Column("group_json", Text, nullable=False),
    Column("value", Float, nullable=False),
    Column("lower", Float, nullable=True),
    Column("upper", Float, nullable=True),
    Column("scale", Float, nullable=True),
    Index(None, "release_id"),
)

insights = Table(
    "insights",
    metadata,
    _id(),
    _release_id(),
    Column("text", Text, nullable=False),
    Column("position", Integer, nullable=False),
    Index(None, "release_id", "position"),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(128), primary_key=True),
    _dataset(registered=False),
    *_object_version(),
    Column("size", BigInteger, nullable=True),
    Column("status", String(32), nullable=False),
    Column("rows_in", BigInteger, nullable=True),
    Column("rows_out", BigInteger, nullable=True),
    Column("rows_suppressed", BigInteger, nullable=True),
    Column("columns_dropped", Integer, nullable=True),
    Column("columns_pseudonymized", Integer, nullable=True),
    Column("columns_generalized", Integer, nullable=True),
    Column("epsilon_spent", Float, nullable=False),
    Column("delta_spent", Float, nullable=False),
    Column("reason", Text, nullable=True),
    Column("flow_run_url", String(1024), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    #: when the record last changed (the dashboard polls for it)
    Column("updated_at", UTCDateTime, nullable=False),
    #: cell values the pipeline set to null (unreadable, outside public keys, NaN/inf)
    Column("values_nulled", BigInteger, nullable=True),
    #: a one-line, counts-only note for operators
    Column("notes", Text, nullable=True),
    Index(None, "started_at"),
    Index(None, "dataset", "started_at"),
    Index(None, "updated_at"),
)

published_objects = Table(
    "published_objects",
    metadata,
    _id(),
    *_object_version(),
    _dataset(registered=False),
    _run_id(),
    Column("published_at", UTCDateTime, nullable=False),
    # the idempotency key: one object version is published once
    UniqueConstraint("bucket", "key", "etag"),
)

#: append-only log of every pinned budget term a dataset has had (invariant 9): the first
#: registration, and each operator change. Triggers refuse UPDATE and DELETE.
terms_changes = Table(
    "terms_changes",
    metadata,
    _id(),
    _dataset(),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("setting", String(32), nullable=False),
    Column("old_value", Text, nullable=True),  # NULL: first pinned
    Column("new_value", Text, nullable=False),
    Column("weakens", Boolean, nullable=False),
    Column("forced", Boolean, nullable=False),
    CheckConstraint(
        "setting IN ('epsilon_cap', 'delta_cap', 'policy', 'window', 'privacy_unit', "
        "'max_rows_per_unit')",
        name="setting_known",
    ),
    Index(None, "dataset", "id"),
)

#: releases over a dataset as a whole (the ``release-dataset`` flow): one row per ledger
#: entry such a release committed, with what it covered
dataset_releases = Table(
    "dataset_releases",
    metadata,
    Column("ledger_id", Integer, ForeignKey("ledger.id"), primary_key=True, autoincrement=False),
    _dataset(),
    #: how the dataset's files relate: append (the release read them all) or snapshot (the
    #: latest)
    Column("files_mode", String(16), nullable=False),
    #: files the release read (public: operators drop them)
    Column("files", Integer, nullable=False),
    #: the public bound on one person's rows over those files
    Column("max_rows_per_unit", Integer, nullable=True),
    #: the first day of the public time window it read (NULL: every row)
    Column("since", Date, nullable=True),
    _created_at(),
    CheckConstraint("files_mode IN ('append', 'snapshot')", name="files_mode_known"),
    CheckConstraint("files >= 1", name="files_positive"),
    Index(None, "dataset", "ledger_id"),
)

#: the object versions (landing keys and etags) each dataset release read
release_coverage = Table(
    "release_coverage",
    metadata,
    _id(),
    Column("ledger_id", Integer, ForeignKey("dataset_releases.ledger_id"), nullable=False),
    *_object_version(),
    Index(None, "ledger_id"),
)

calibrations = Table(
    "calibrations",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("scale", Float, nullable=False),
    _created_at(),
)
