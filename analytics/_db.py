"""Engine set-up, error translation and budget-window arithmetic shared by the store's
writer (``analytics.store``) and its read-only API (``analytics.queries``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from privacy.errors import PipelineError, StorageUnavailable

#: a reservation older than this belongs to a run that crashed: it no longer counts
DEFAULT_RESERVATION_TIMEOUT = timedelta(minutes=30)
#: how long a SQLite connection waits for another writer's lock before giving up (ms)
_SQLITE_BUSY_PRAGMA = "PRAGMA busy_timeout = 30000"

#: execution option marking a read-only transaction (SQLite: plain BEGIN, no write lock)
READ_ONLY_OPTION = "pa_read_only"

WINDOWS = ("day", "week", "month", "quarter", "year")


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except sa_exc.ArgumentError:
        raise PipelineError(
            "the aggregate store URL is not a SQLAlchemy URL: set PA_STORE_URL to e.g. "
            "sqlite:////path/aggregates.db or postgresql+psycopg://user@host/db"
        ) from None


def safe_url(url: URL) -> str:
    """The URL as it may appear in a message: never with its password."""
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL (None for other backends)."""
    if url.get_backend_name() != "sqlite":
        return None
    db = url.database or ""
    if db in ("", ":memory:") or db.startswith("file:"):
        raise PipelineError(
            f"aggregate store {safe_url(url)}: use a SQLite file path, e.g. "
            "sqlite:////path/aggregates.db (in-memory stores cannot be shared between processes)"
        )
    return Path(db).expanduser()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0][:200] if text else type(orig).__name__


@contextmanager
def storage_errors(url: URL, hint: str = "") -> Iterator[None]:
    """Translate database connectivity errors into StorageUnavailable naming the store.

    Only connection-level errors are translated (their messages come from the driver and
    the server, never from stored values); integrity errors are bugs and surface as such.
    """
    try:
        yield
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        what = hint or (
            "check that the database is running and reachable and that PA_STORE_URL is right; "
            "retrying may help"
        )
        raise StorageUnavailable(
            f"aggregate store at {safe_url(url)}: {_first_line(exc)}; {what}"
        ) from None


def _set_wal(cur: Any, attempts: int = 100) -> None:
    """Switch a new database to WAL. The switch needs the database to itself and SQLite
    answers "database is locked" at once, without waiting for the busy timeout, while another
    connection holds it (concurrent first opens): retry for up to about ten seconds."""
    import sqlite3
    import time

    for attempt in range(attempts):
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def install_sqlite_hooks(engine: Any, *, immediate: bool) -> None:
    """WAL, busy timeout, foreign keys; and (for writers) BEGIN IMMEDIATE transactions.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself,
    as the SQLAlchemy docs recommend ("Serializable isolation / Savepoints / Transactional
    DDL"); an immediate transaction takes the write lock up front, so two writers never
    both read the ledger and then both spend.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(_SQLITE_BUSY_PRAGMA)
            cur.execute("PRAGMA foreign_keys = ON")
            if immediate:
                _set_wal(cur)
                cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        reading = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate and not reading else "BEGIN")


# --------------------------------------------------------------------------- budget windows


def window_start(policy: str, window: str | None, now: datetime) -> datetime | None:
    """Start (UTC) of the calendar period ``now`` falls in; None under the lifetime policy.

    Weeks start on Monday (ISO weeks); quarters in January, April, July and October.

    >>> window_start("window", "quarter", datetime(2024, 5, 17, 13, 5, tzinfo=UTC))
    datetime.datetime(2024, 4, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if policy != "window":
        return None
    if window not in WINDOWS:
        raise PipelineError(f"budget window must be one of {', '.join(WINDOWS)}")
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day
    if window == "week":
        return day - timedelta(days=day.weekday())
    if window == "month":
        return day.replace(day=1)
    if window == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    return day.replace(month=1, day=1)


def window_end(window: str | None, start: datetime) -> datetime:
    """Start of the calendar period after the one starting at ``start``."""
    if window == "day":
        return start + timedelta(days=1)
    if window == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}.get(window or "")
    if months is None:
        raise PipelineError(f"budget window must be one of {', '.join(WINDOWS)}")
    total = start.year * 12 + start.month - 1 + months
    return start.replace(year=total // 12, month=total % 12 + 1, day=1)


def in_window(column: Any, policy: str, window: str | None, now: datetime) -> Any:
    """SQL condition: ``column`` (a timestamp) falls in the current budget window of ``now``
    (None under the lifetime policy: every time counts)."""
    start = window_start(policy, window, now)
    if start is None:
        return None
    return and_(column >= start, column < window_end(window, start))


def finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
