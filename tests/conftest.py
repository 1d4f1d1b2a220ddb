"""Fixtures shared by all test packages."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

#: the PostgreSQL server the tests use; each test creates and drops its own database
PG_SERVER_URL = os.environ.get("PA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


@pytest.fixture
def pg_url() -> Iterator[Callable[[], str]]:
    """A factory of fresh PostgreSQL databases: ``url = pg_url()``; all dropped at teardown."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(PG_SERVER_URL)
    conninfo = {
        "host": server.host or "127.0.0.1",
        "port": server.port or 5432,
        "user": server.username or "postgres",
        "dbname": "postgres",
        "autocommit": True,
    }
    if server.password:
        conninfo["password"] = server.password
    created: list[str] = []

    def make() -> str:
        name = f"pa_test_{uuid.uuid4().hex[:12]}"
        try:
            with psycopg.connect(**conninfo) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.OperationalError as exc:
            pytest.fail(
                f"PostgreSQL at {server.host}:{server.port} is not reachable ({exc}); start it "
                "or point PA_TEST_PG_URL at one"
            )
        created.append(name)
        return server.set(database=name).render_as_string(hide_password=False)

    yield make
    if created:
        with psycopg.connect(**conninfo) as conn:
            for name in created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
