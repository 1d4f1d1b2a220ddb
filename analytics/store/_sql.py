"""The dialect-specific writes of the store's writer: INSERT ... ON CONFLICT on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.schema import Table

from privacy.errors import PipelineError


def insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if the row was inserted."""
    dialect = conn.dialect.name
    # RETURNING tells inserted from ignored on both backends (psycopg's rowcount is -1 here)
    key = list(table.primary_key.columns)
    if dialect == "postgresql":
        pstmt = pg_dialect.insert(table).values(**values).on_conflict_do_nothing()
        result = conn.execute(pstmt.returning(*key))
    elif dialect == "sqlite":
        sstmt = sqlite_dialect.insert(table).values(**values).on_conflict_do_nothing()
        result = conn.execute(sstmt.returning(*key))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise PipelineError(f"aggregate store backend '{dialect}' is not supported")
    return result.first() is not None


def upsert(
    conn: Connection, table: Table, key: str, values: Mapping[str, Any], keep: tuple[str, ...] = ()
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, leaving the ``keep`` columns as they were."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        pstmt = pg_dialect.insert(table).values(**values)
        pset = {c: pstmt.excluded[c] for c in values if c != key and c not in keep}
        conn.execute(pstmt.on_conflict_do_update(index_elements=[table.c[key]], set_=pset))
    elif dialect == "sqlite":
        sstmt = sqlite_dialect.insert(table).values(**values)
        sset = {c: sstmt.excluded[c] for c in values if c != key and c not in keep}
        conn.execute(sstmt.on_conflict_do_update(index_elements=[table.c[key]], set_=sset))
    else:  # pragma: no cover
        raise PipelineError(f"aggregate store backend '{dialect}' is not supported")
