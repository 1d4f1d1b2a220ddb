"""The aggregate store: what the pipeline publishes and the dashboard reads.

    from analytics.store import AggregateStore, ObjectVersion, RunRecord   # the pipeline
    from analytics.store import ReadOnlyStore, BudgetStatus                # readers

``writer`` (AggregateStore: budgets, ledger, publish, runs; it migrates with Alembic) and
``queries`` (ReadOnlyStore and the ``rows`` it returns; it never writes) share ``schema``,
the ``spend`` and exhaustion definition and the ``records``; ``pinning`` and ``terms`` hold
the pinned budget terms, ``migrations`` the Alembic revisions.

The writer loads on first use of its names, so the read-only API never imports it (nor
Alembic).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from analytics.store import rows
from analytics.store.errors import StoreNotCreated, UnknownDataset
from analytics.store.queries import ReadOnlyStore
from analytics.store.records import ObjectVersion, Reservation, RunRecord, RunStatus, utcnow
from analytics.store.rows import *  # noqa: F403 - the row types, as ``rows.__all__`` lists them
from analytics.store.spend import Spend, exhausted

if TYPE_CHECKING:
    from analytics.store.writer import MIGRATIONS_DIR, AggregateStore, make_revision

__all__ = [
    "MIGRATIONS_DIR",
    "AggregateStore",
    "ObjectVersion",
    "ReadOnlyStore",
    "Reservation",
    "RunRecord",
    "RunStatus",
    "Spend",
    "StoreNotCreated",
    "UnknownDataset",
    "exhausted",
    "make_revision",
    "utcnow",
]
__all__ += rows.__all__

_WRITER = ("AggregateStore", "MIGRATIONS_DIR", "make_revision")


def __getattr__(name: str) -> Any:
    if name not in _WRITER:
        raise AttributeError(f"module 'analytics.store' has no attribute '{name}'")
    return getattr(importlib.import_module("analytics.store.writer"), name)
