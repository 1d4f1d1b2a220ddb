"""Run records in the aggregate store: one row per pipeline run, inserted or updated by run
id (the first start time is kept). Counts only, exact: operator information."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from analytics.store._sql import upsert
from analytics.store.records import RunRecord
from analytics.store.schema import runs


def _run_values(run: RunRecord, now: datetime, **override: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "run_id": run.run_id,
        "dataset": run.dataset,
        **run.obj.columns(),
        "size": run.obj.size,
        "status": run.status,
        "rows_in": run.rows_in,
        "rows_out": run.rows_out,
        "rows_suppressed": run.rows_suppressed,
        "columns_dropped": run.columns_dropped,
        "columns_pseudonymized": run.columns_pseudonymized,
        "columns_generalized": run.columns_generalized,
        "epsilon_spent": float(run.epsilon_spent or 0.0),
        "delta_spent": float(run.delta_spent or 0.0),
        "reason": run.reason,
        "flow_run_url": run.flow_run_url,
        "values_nulled": run.values_nulled,
        "notes": run.notes,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "updated_at": now,
    }
    values.update(override)
    return values


def record_run(conn: Connection, run: RunRecord, now: datetime, **override: Any) -> None:
    """Insert or update ``run`` by its run id; ``override`` replaces some of its fields."""
    upsert(conn, runs, "run_id", _run_values(run, now, **override), keep=("started_at",))


def record_duplicate(conn: Connection, run: RunRecord, published_by: str, now: datetime) -> None:
    """Record ``run`` as a duplicate: its object version was published by ``published_by``."""
    reason = (
        f"this object version was already published by run {published_by}; "
        "nothing new was released and no budget was spent"
    )
    record_run(conn, run, now, status="duplicate", epsilon_spent=0.0, delta_spent=0.0,
               reason=reason, finished_at=run.finished_at or now)


def record_completed(
    conn: Connection, run: RunRecord, now: datetime, *, epsilon: float, delta: float
) -> None:
    """Record ``run`` as completed, with what it spent."""
    record_run(conn, run, now, status="completed", epsilon_spent=epsilon, delta_spent=delta,
               finished_at=run.finished_at or now)
