"""The writer's side of dataset releases: which files a dataset has (the object versions its
runs validated and masked), which of them the latest dataset release read, and the coverage
rows a dataset release commits with its values."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select

from analytics.store.records import MASKED_STATUSES, Coverage, DatasetFile, ObjectVersion
from analytics.store.schema import dataset_releases, release_coverage, runs


def dataset_files(conn: Connection, dataset: str) -> list[DatasetFile]:
    """The files of ``dataset``: for each object key, the newest version a run validated
    and masked (a file dropped again under the same name replaces the earlier one), oldest
    first."""
    rows = conn.execute(
        select(runs.c.bucket, runs.c.key, runs.c.etag, runs.c.size, runs.c.rows_in,
               runs.c.finished_at)
        .where(runs.c.dataset == dataset, runs.c.status.in_(MASKED_STATUSES),
               runs.c.key.like("landing/%"))
        .order_by(runs.c.finished_at, runs.c.run_id)
    ).all()
    seen: dict[tuple[str, str], DatasetFile] = {}
    for r in rows:  # by finish time: the last one of a key is its newest version
        seen[(r.bucket, r.key)] = DatasetFile(
            ObjectVersion(r.bucket, r.key, r.etag, r.size), r.rows_in, r.finished_at
        )
    return sorted(seen.values(), key=lambda f: (f.finished_at is None, f.finished_at))


def latest_covered(conn: Connection, dataset: str) -> set[tuple[str, str, str]]:
    """The object versions the latest dataset release of ``dataset`` read (empty: none)."""
    latest = conn.execute(
        select(func.max(dataset_releases.c.ledger_id)).where(dataset_releases.c.dataset == dataset)
    ).scalar_one_or_none()
    if latest is None:
        return set()
    rows = conn.execute(
        select(release_coverage.c.bucket, release_coverage.c.key, release_coverage.c.etag)
        .where(release_coverage.c.ledger_id == latest)
    ).all()
    return {(r.bucket, r.key, r.etag) for r in rows}


def insert_coverage(conn: Connection, ledger_id: int, coverage: Coverage, now: datetime) -> None:
    """Record that ledger entry ``ledger_id`` is a dataset release over ``coverage``."""
    conn.execute(insert(dataset_releases).values(
        ledger_id=ledger_id, dataset=coverage.dataset, files_mode=coverage.files_mode,
        files=len(coverage.files), max_rows_per_unit=coverage.max_rows_per_unit,
        since=coverage.since, created_at=now,
    ))
    conn.execute(insert(release_coverage), [
        {"ledger_id": ledger_id, **obj.columns()} for obj in coverage.files
    ])
