"""A private PostgreSQL cluster for the one-machine topology (flows/topology.py).

The topology's `postgres` service: ``initdb`` into a fresh folder, the server on its own port
(TCP on 127.0.0.1 with SCRAM passwords, the socket trusted for set-up only), then
``infra/postgres/initdb.d/10-databases.sh`` run against it exactly as the postgres image runs
it: databases ``prefect`` and ``aggregates``, roles ``prefect``, ``pa_writer`` and ``pa_reader``
with the passwords from the secret files. A cluster of its own, because roles are global to
a PostgreSQL server: creating ``pa_writer`` on a shared one would touch everyone's.

Run as root, the server runs as the ``postgres`` user (``runuser``), like the image does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from privacy.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]
INIT_SCRIPT = ROOT / "infra" / "postgres" / "initdb.d" / "10-databases.sh"
READONLY_ROLE_SQL = ROOT / "analytics" / "sql" / "readonly_role.sql"


def pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise PipelineError(f"PostgreSQL's {name} is not installed; install the postgresql package")


def _as_postgres() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PipelineError("running as root: runuser is needed to start PostgreSQL as 'postgres'")
    return [runuser, "-u", "postgres", "--"]


class PgCluster:
    """initdb, start, set up with the project's init script, stop and remove."""

    def __init__(self, port: int) -> None:
        self.port = port
        # not under the state dir: its parents may not be traversable by `postgres`
        self.base = Path(tempfile.mkdtemp(prefix="pa-topology-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self._sudo = _as_postgres()
        if self._sudo:
            shutil.chown(self.base, "postgres")
        self.base.chmod(0o755)
        self.running = False

    def _run(self, argv: list[str], what: str, env: dict[str, str] | None = None,
             timeout: float = 120) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)
        if proc.returncode != 0:
            raise PipelineError(f"postgres: {what} failed: {proc.stderr.strip()[-1500:]}")

    def init(self, secrets: Path) -> None:
        """initdb with the superuser password of ``secrets/postgres_password``."""
        pwfile = self.base / "pwfile"
        shutil.copy(secrets / "postgres_password", pwfile)  # readable by `postgres`
        if self._sudo:
            shutil.chown(pwfile, "postgres")
        self._run([*self._sudo, pg_bin("initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
                   "-E", "UTF8"], "initdb")
        pwfile.unlink()

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 "
                "-c max_connections=300")
        self._run([*self._sudo, pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                   "-w", "-t", "60", "-o", opts, "start"], "start")
        self.running = True

    def set_up(self, secrets: Path) -> None:
        """infra/postgres/initdb.d/10-databases.sh over the trusted socket, as the image runs it."""
        env = {
            "PATH": f"{Path(pg_bin('psql')).parent}:/usr/bin:/bin",
            "PGHOST": str(self.base),
            "PGPORT": str(self.port),
            "POSTGRES_USER": "postgres",
            "PREFECT_DB_PASSWORD_FILE": str(secrets / "prefect_db_password"),
            "STORE_WRITER_PASSWORD_FILE": str(secrets / "store_writer_password"),
            "STORE_READER_PASSWORD_FILE": str(secrets / "store_reader_password"),
            "READONLY_ROLE_SQL": str(READONLY_ROLE_SQL),
        }
        self._run(["bash", str(INIT_SCRIPT)], "infra/postgres/initdb.d/10-databases.sh", env=env)

    def pid(self) -> int | None:
        """The postmaster's pid, while the server runs."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def stop(self) -> None:
        if self.running:
            with contextlib.suppress(subprocess.SubprocessError, PipelineError):
                self._run([*self._sudo, pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast",
                           "-w", "-t", "60", "stop"], "stop", timeout=90)
            self.running = False
        shutil.rmtree(self.base, ignore_errors=True)
