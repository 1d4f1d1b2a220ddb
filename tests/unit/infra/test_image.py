"""The application image: Dockerfile, build-context allow-list, entrypoint and health probe.

The entrypoint and the probe are run for real (bash and this interpreter); the Dockerfile is
checked instruction by instruction, since there is no Docker engine to build it.
"""

from __future__ import annotations

import fnmatch
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.infra.conftest import INFRA, ROOT

DOCKERFILE = INFRA / "Dockerfile"
ENTRYPOINT = INFRA / "docker" / "entrypoint.sh"
PROBE = INFRA / "docker" / "healthcheck.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_base_image_is_python_311_slim() -> None:
    froms = [arg for ins, arg in instructions() if ins == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim"


def test_runs_as_a_non_root_user() -> None:
    users = [arg for ins, arg in instructions() if ins == "USER"]
    assert users, "the image must switch to an unprivileged USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), f"final USER is {user}"
    assert any(ins == "RUN" and "useradd" in arg and user in arg for ins, arg in instructions())


def test_installs_the_lock_file_then_the_package_without_dependencies() -> None:
    runs = [arg for ins, arg in instructions() if ins == "RUN"]
    lock_re = r"pip install (-r|--requirement) \S*requirements\.lock"
    lock = next(i for i, r in enumerate(runs) if re.search(lock_re, r))
    pkg = next(i for i, r in enumerate(runs) if re.search(r"pip install --no-deps \S+", r))
    assert lock < pkg, "dependencies from requirements.lock first, then the project"
    copies = [arg for ins, arg in instructions() if ins == "COPY"]
    assert copies[0].split()[0] == "requirements.lock", "copy the lock file alone (layer cache)"


def test_copied_sources_exist_and_pass_the_dockerignore() -> None:
    ignore = (INFRA / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [r for r in (line.strip() for line in ignore) if r and not r.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negate = rule.startswith("!")
            pattern = rule.lstrip("!")
            parts = path.split("/")
            hit = any(
                fnmatch.fnmatchcase("/".join(parts[: i + 1]), pattern) for i in range(len(parts))
            ) or fnmatch.fnmatchcase(path, pattern)
            if hit:
                keep = negate
        return keep

    for ins, arg in instructions():
        if ins != "COPY" or arg.startswith("--from"):
            continue
        for src in arg.split()[:-1]:
            if src == ".":
                continue
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the build context"
            assert included(src), f"COPY {src}: excluded by Dockerfile.dockerignore"
    for needed in ("pyproject.toml", "flows/serve.py", "analytics/store/migrations/env.py",
                   "dashboard/assets", "contracts", "privacy/__init__.py"):
        assert included(needed), f"{needed} is left out of the build context"
    for secret in (".venv/bin/python", ".git/config", "infra/secrets/pseudonym_key",
                   ".pa-state/pseudonym.key", "test-output/x", "tests/conftest.py"):
        assert not included(secret), f"{secret} would be sent to the Docker daemon"


def test_entrypoint_and_probe_are_installed() -> None:
    ins = instructions()
    assert ("ENTRYPOINT", '["pa-entrypoint"]') in ins
    copies = " ".join(arg for i, arg in ins if i == "COPY")
    assert "infra/docker/entrypoint.sh /usr/local/bin/pa-entrypoint" in copies
    assert "infra/docker/healthcheck.py /usr/local/bin/pa-healthcheck" in copies
    env = " ".join(arg for i, arg in ins if i == "ENV")
    assert "PREFECT_SERVER_ANALYTICS_ENABLED=false" in env and "DO_NOT_TRACK=1" in env


# --------------------------------------------------------------------------- entrypoint


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ENTRYPOINT), *command],
        env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=30,
        check=False,
    )


def test_entrypoint_turns_secret_files_into_variables(tmp_path: Path) -> None:
    key = tmp_path / "pseudonym_key"
    key.write_text("k3y with spaces\n\n")
    pw = tmp_path / "pw"
    pw.write_text("pg-password")
    proc = run_entrypoint(
        {"PA_PSEUDONYM_KEY_FILE": str(key), "PGPASSWORD_FILE": str(pw),
         "PA_DASHBOARD_S3_PUT_SECRET_KEY_FILE": str(pw), "SSL_CERT_FILE": str(pw)},
        "env",
    )
    assert proc.returncode == 0, proc.stderr
    env = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    assert env["PA_PSEUDONYM_KEY"] == "k3y with spaces"
    assert env["PGPASSWORD"] == "pg-password"
    assert env["PA_DASHBOARD_S3_PUT_SECRET_KEY"] == "pg-password"
    assert "PA_PSEUDONYM_KEY_FILE" not in env and "PGPASSWORD_FILE" not in env
    assert env["SSL_CERT_FILE"] == str(pw), "other *_FILE variables are left alone"
    assert "SSL_CERT" not in env


def test_entrypoint_refuses_two_sources_for_one_secret(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("from-file")
    proc = run_entrypoint({"PA_PSEUDONYM_KEY_FILE": str(key), "PA_PSEUDONYM_KEY": "inline"}, "true")
    assert proc.returncode == 64
    assert "PA_PSEUDONYM_KEY" in proc.stderr and "only one" in proc.stderr


@pytest.mark.parametrize("content", [None, ""])
def test_entrypoint_refuses_missing_or_empty_files(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    proc = run_entrypoint({"PA_RECEIVER_TOKEN_FILE": str(path)}, "true")
    assert proc.returncode == 64
    assert "PA_RECEIVER_TOKEN_FILE" in proc.stderr
    assert "from-file" not in proc.stderr


def test_the_dashboard_users_file_passes_the_entrypoint_intact(tmp_path: Path) -> None:
    """PA_DASHBOARD_USERS_FILE (a multi-line YAML secret) reaches the dashboard's settings as
    PA_DASHBOARD_USERS, and its users load."""
    from dashboard.passwords import MIN_ITERATIONS, hash_password

    users = tmp_path / "dashboard_users"
    users.write_text(
        "# comment\nusers:\n"
        f"  - name: ana\n    role: viewer\n    password_hash: {hash_password('pw', MIN_ITERATIONS)}\n"
        f"  - name: olu\n    role: operator\n    password_hash: {hash_password('pw', MIN_ITERATIONS)}\n"
        "    upload_datasets: [employees]\n"
    )
    code = (
        "from dashboard.settings import DashboardSettings as S; from dashboard.users import "
        "load_users; s = S(); assert s.users_file is None; "
        "u = load_users(s).users; print(sorted(u), u['olu'].may_upload('employees'))"
    )
    proc = subprocess.run(
        ["bash", str(ENTRYPOINT), sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PA_DASHBOARD_USERS_FILE": str(users)},
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "['ana', 'olu'] True"


def test_entrypoint_execs_the_command_with_its_exit_code() -> None:
    proc = run_entrypoint({}, "bash", "-c", "exit 7")
    assert proc.returncode == 7
    assert run_entrypoint({}).returncode == 64


# --------------------------------------------------------------------------- health probe


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = int(self.path.strip("/") or 200)
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "code"), [(200, 0), (204, 0), (401, 0), (404, 0), (500, 1), (503, 1)]
)
def test_probe_treats_5xx_as_unhealthy(http_server: str, status: int, code: int) -> None:
    proc = subprocess.run([sys.executable, str(PROBE), f"{http_server}/{status}", "3"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == code, proc.stderr


def test_probe_fails_when_nothing_listens() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, str(PROBE), f"http://127.0.0.1:{port}/", "2"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and "pa-healthcheck" in proc.stderr


def test_probe_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, str(PROBE), "not-a-url"], capture_output=True, timeout=30
    )
    assert proc.returncode == 2
