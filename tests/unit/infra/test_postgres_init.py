"""infra/postgres/initdb.d/10-databases.sh against a real, private PostgreSQL cluster.

The cluster is created for this module (initdb into a temporary folder, a free port, local
socket trusted, TCP with SCRAM passwords) so roles created here never touch the shared test
server. What is checked is what the compose file relies on:

- the three roles log in over TCP with the passwords from their secret files;
- the store-migrate one-shot (through the image's entrypoint, password via PGPASSWORD_FILE)
  creates the aggregate schema as pa_writer;
- pa_reader reads every table the pipeline created afterwards, and can write nothing, even
  after switching its session out of read-only mode; it cannot reach the Prefect database;
- the prefect role owns its database (tables, the pg_trgm extension Prefect's migrations use);
- running the script again changes nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.unit.infra.conftest import INFRA, ROOT, env_of

pytestmark = pytest.mark.integration

INIT = INFRA / "postgres" / "initdb.d" / "10-databases.sh"
PASSWORDS = {
    "postgres_password": "superuser-pw-0001",
    "prefect_db_password": "prefect-pw-0002",
    "store_writer_password": "writer-pw-0003",
    "store_reader_password": "reader-pw-0004",
}


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        pytest.fail(f"PostgreSQL's {name} is not installed; install the postgresql package")
    return found


def _as_postgres_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    assert runuser, "running as root: runuser is needed to start PostgreSQL as 'postgres'"
    return [runuser, "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    base = Path(tempfile.mkdtemp(prefix="pa-infra-pg-"))
    data, secrets = base / "data", base / "secrets"
    secrets.mkdir()
    for name, value in PASSWORDS.items():
        (secrets / name).write_text(value + "\n")
        (secrets / name).chmod(0o644)
    sudo = _as_postgres_user()
    if sudo:
        shutil.chown(base, "postgres")
        base.chmod(0o755)
    port = _free_port()
    pwfile = secrets / "postgres_password"
    subprocess.run(
        [*sudo, _pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"],
        check=True, capture_output=True, timeout=120,
    )
    subprocess.run(
        [*sudo, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60",
         "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
        check=True, capture_output=True, timeout=120,
    )
    try:
        yield {"base": base, "port": port, "secrets": secrets}
    finally:
        subprocess.run([*sudo, _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


def run_init(cluster: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    s = cluster["secrets"]
    env = {
        "PATH": f"{Path(_pg_bin('psql')).parent}:/usr/bin:/bin",
        "PGHOST": str(cluster["base"]),  # the socket: trusted, as in the image's init phase
        "PGPORT": str(cluster["port"]),
        "POSTGRES_USER": "postgres",
        "PREFECT_DB_PASSWORD_FILE": str(s / "prefect_db_password"),
        "STORE_WRITER_PASSWORD_FILE": str(s / "store_writer_password"),
        "STORE_READER_PASSWORD_FILE": str(s / "store_reader_password"),
        "READONLY_ROLE_SQL": str(ROOT / "analytics" / "sql" / "readonly_role.sql"),
    }
    return subprocess.run(["bash", str(INIT)], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def connect(cluster: dict[str, Any], user: str, dbname: str, password: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=cluster["port"], user=user, dbname=dbname,
                           password=password, autocommit=True, connect_timeout=10)


@pytest.fixture(scope="module")
def initialised(cluster: dict[str, Any], services: dict[str, Any]) -> dict[str, Any]:
    proc = run_init(cluster)
    assert proc.returncode == 0, proc.stderr
    # the pipeline's one-shot migration, exactly as compose runs it (host and port swapped)
    svc = services["store-migrate"]
    url = env_of(svc)["PA_STORE_URL"].replace("postgres:5432", f"127.0.0.1:{cluster['port']}")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cluster["base"]),
        "PA_STORE_URL": url,
        "PGPASSWORD_FILE": str(cluster["secrets"] / "store_writer_password"),
    }
    migrate = subprocess.run(
        ["bash", str(INFRA / "docker" / "entrypoint.sh"), sys.executable, *svc["command"][1:]],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return cluster


def test_roles_log_in_with_their_secret_passwords(initialised: dict[str, Any]) -> None:
    with connect(initialised, "prefect", "prefect", PASSWORDS["prefect_db_password"]) as c:
        assert c.execute("select current_user").fetchone() == ("prefect",)
    with connect(initialised, "pa_writer", "aggregates", PASSWORDS["store_writer_password"]):
        pass
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(initialised, "pa_reader", "aggregates", "wrong-password")


def test_roles_are_not_privileged(initialised: dict[str, Any]) -> None:
    with connect(initialised, "pa_writer", "aggregates", PASSWORDS["store_writer_password"]) as c:
        rows = c.execute(
            "select rolname, rolsuper, rolcreatedb, rolcreaterole from pg_roles "
            "where rolname in ('prefect', 'pa_writer', 'pa_reader') order by rolname"
        ).fetchall()
    assert [r[0] for r in rows] == ["pa_reader", "pa_writer", "prefect"]
    assert all(not any(r[1:]) for r in rows)


def test_reader_reads_tables_created_after_the_init(initialised: dict[str, Any]) -> None:
    with connect(initialised, "pa_reader", "aggregates", PASSWORDS["store_reader_password"]) as c:
        tables = [r[0] for r in c.execute(
            "select tablename from pg_tables where schemaname = 'public' order by 1")]
        assert {"datasets", "ledger", "releases", "runs"} <= set(tables)
        for table in tables:
            c.execute(f'select count(*) from "{table}"').fetchone()


def test_reader_writes_nothing(initialised: dict[str, Any]) -> None:
    with connect(initialised, "pa_reader", "aggregates", PASSWORDS["store_reader_password"]) as c:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute("delete from ledger")
        c.execute("set default_transaction_read_only = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("delete from ledger")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("create table public.sneaky (i int)")


def test_dashboard_read_path_works_with_the_reader_role(
    initialised: dict[str, Any], monkeypatch: pytest.MonkeyPatch, services: dict[str, Any]
) -> None:
    from analytics.store import ReadOnlyStore

    url = env_of(services["dashboard"])["PA_DASHBOARD_STORE_URL"].replace(
        "postgres:5432", f"127.0.0.1:{initialised['port']}"
    )
    monkeypatch.setenv("PGPASSWORD", PASSWORDS["store_reader_password"])  # = PGPASSWORD_FILE
    with ReadOnlyStore(url) as store:
        assert list(store.datasets()) == []


def test_databases_are_closed_to_other_roles(initialised: dict[str, Any]) -> None:
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(initialised, "pa_reader", "prefect", PASSWORDS["store_reader_password"])
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(initialised, "pa_writer", "prefect", PASSWORDS["store_writer_password"])
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(initialised, "prefect", "aggregates", PASSWORDS["prefect_db_password"])


def test_prefect_owns_its_database(initialised: dict[str, Any]) -> None:
    with connect(initialised, "prefect", "prefect", PASSWORDS["prefect_db_password"]) as c:
        c.execute("create table if not exists probe (i int)")
        c.execute("drop table probe")
        if c.execute("select 1 from pg_available_extensions where name = 'pg_trgm'").fetchone():
            c.execute("create extension if not exists pg_trgm")  # trusted: the owner may


def test_init_script_is_idempotent(initialised: dict[str, Any]) -> None:
    started = time.monotonic()
    again = run_init(initialised)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 60
    with connect(initialised, "pa_reader", "aggregates", PASSWORDS["store_reader_password"]) as c:
        assert c.execute("select count(*) from datasets").fetchone() == (0,)


def test_init_script_refuses_a_missing_secret(cluster: dict[str, Any], tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin", "PGHOST": str(cluster["base"]), "PGPORT": str(cluster["port"]),
        "PREFECT_DB_PASSWORD_FILE": str(tmp_path / "absent"),
        "STORE_WRITER_PASSWORD_FILE": str(cluster["secrets"] / "store_writer_password"),
        "STORE_READER_PASSWORD_FILE": str(cluster["secrets"] / "store_reader_password"),
        "READONLY_ROLE_SQL": str(ROOT / "analytics" / "sql" / "readonly_role.sql"),
    }
    proc = subprocess.run(["bash", str(INIT)], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1 and "absent" in proc.stderr
