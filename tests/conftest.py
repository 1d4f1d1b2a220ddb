"""Fixtures shared by all test packages."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Prefect reads its settings when first imported: pin every test process to the test server
# (started on demand by the `prefect_server` fixture) and to a private, throw-away home, so no
# test ever talks to a developer's server or starts a silent ephemeral one.
PREFECT_TEST_PORT = free_port()
PREFECT_TEST_HOME = tempfile.mkdtemp(prefix="pa-test-prefect-")
os.environ.update(
    {
        "PREFECT_API_URL": f"http://127.0.0.1:{PREFECT_TEST_PORT}/api",
        "PREFECT_UI_URL": f"http://127.0.0.1:{PREFECT_TEST_PORT}",
        "PREFECT_HOME": PREFECT_TEST_HOME,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    }
)

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


@pytest.fixture(scope="session")
def real_datasets() -> os.PathLike[str]:
    """The folder of real public datasets vendored with the tests (``tests/data``, see its
    README for each file's source and licence)."""
    from pathlib import Path

    return Path(__file__).resolve().parent / "data"
