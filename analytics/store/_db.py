"""Engine set-up, error translation and the handle (``StoreHandle``: URL, clock, closing)
shared by the store's writer (``analytics.store.writer``) and its read-only API
(``analytics.store.queries``)."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from privacy.errors import PipelineError, StorageUnavailable

#: a reservation older than this belongs to a run that crashed: it no longer counts
DEFAULT_RESERVATION_TIMEOUT = timedelta(minutes=30)
#: how long a SQLite connection waits for another writer's lock before giving up (ms)
_SQLITE_BUSY_PRAGMA = "PRAGMA busy_timeout = 30000"

#: execution option marking a read-only transaction (SQLite: plain BEGIN, no write lock)
READ_ONLY_OPTION = "pa_read_only"


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


def read_only_engine(url: URL, path: Path | None) -> Engine:
    """An engine that cannot write: SQLite opened with ``mode=ro`` (``path``: the file behind
    ``url``), PostgreSQL with ``default_transaction_read_only=on`` on every connection."""
    if path is None:
        return create_engine(
            url, pool_pre_ping=True, connect_args={"options": "-c default_transaction_read_only=on"}
        )
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"

    def _connect() -> sqlite3.Connection:
        return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10.0)

    engine = create_engine("sqlite://", creator=_connect, poolclass=NullPool)
    install_sqlite_hooks(engine, immediate=False)
    return engine


def finite_number(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


class StoreHandle:
    """What the writer and the read-only API share: the store URL, the clock, the
    reservation timeout, an engine to close, and use in a ``with`` block."""

    _engine: Engine

    def __init__(
        self, url: str, *, reservation_timeout: timedelta, clock: Callable[[], datetime]
    ) -> None:
        self._url = parse_url(url)
        self._clock = clock
        self.reservation_timeout = reservation_timeout

    @property
    def url(self) -> str:
        """The store URL without its password."""
        return safe_url(self._url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _live_after(self, now: datetime) -> datetime:
        """Reservations created at or before this belong to crashed runs."""
        return now - self.reservation_timeout
