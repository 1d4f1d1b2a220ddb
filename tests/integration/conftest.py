"""Real services for integration tests: a Prefect server, an S3 server (moto over HTTP), and
the service's own processes (served deployments, watcher, receiver) started as subprocesses."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PREFECT_TEST_HOME, PREFECT_TEST_PORT, free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.3
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 500
    except OSError:
        return False


def _flush_prefect_logs() -> None:
    """Send buffered run logs while the server still listens (else Prefect complains at exit)."""
    import logging

    from prefect.logging.handlers import APILogHandler

    for logger in [logging.getLogger(n) for n in ("prefect", "prefect.flow_runs", "prefect.task_runs")]:
        for h in logger.handlers:
            if isinstance(h, APILogHandler):
                h.flush()


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """A real Prefect server (SQLite, services on) on the port tests/conftest.py pinned."""
    api = os.environ["PREFECT_API_URL"]
    log = Path(PREFECT_TEST_HOME) / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(PREFECT_TEST_PORT),
                "--analytics-off",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=os.environ.copy(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while not _http_ok(f"{api}/health"):
            if proc.poll() is not None:
                raise AssertionError(f"Prefect server exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("Prefect server did not answer within 120 s")
            time.sleep(0.5)
        yield api
    finally:
        _flush_prefect_logs()
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, str]]:
    """moto's standalone S3 server over HTTP on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "PA_S3_ENDPOINT": f"127.0.0.1:{port}",
            "PA_S3_ACCESS_KEY": "testing",
            "PA_S3_SECRET_KEY": "testing-secret",
            "PA_S3_SECURE": "false",
            "PA_S3_REGION": "us-east-1",
        }
    finally:
        server.stop()


def make_pa_env(state: Path, **extra: str) -> dict[str, str]:
    """PA_* settings of one isolated service instance (its own state dir and event namespace)."""
    contracts = state / "contracts"
    contracts.mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "contracts").glob("*.yaml"):
        shutil.copy(f, contracts / f.name)
    env = {
        "PA_STATE_DIR": str(state),
        "PA_CONTRACTS_DIR": str(contracts),
        "PA_PSEUDONYM_KEY": "test-pseudonym-key-" + uuid.uuid4().hex,
        "PA_RECEIVER_TOKEN": "test-token-" + uuid.uuid4().hex,
        "PA_RECEIVER_PORT": str(free_port()),
        "PA_EVENT_NAMESPACE": "t" + uuid.uuid4().hex[:10],
        "PA_WATCH_INTERVAL_SECONDS": "0.2",
        "PA_S3_BUCKET": "pa-" + uuid.uuid4().hex[:10],
    }
    env.update(extra)
    return env


class Service:
    """The service's own processes, started like `up` starts them, against the test server."""

    def __init__(self, env: dict[str, str], state: Path) -> None:
        self.env = {**os.environ, **env}
        self.state = state
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, module: str) -> None:
        logs = self.state / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with (logs / f"{name}.log").open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
                start_new_session=True,
            )

    def log(self, name: str) -> str:
        p = self.state / "logs" / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def alive(self) -> None:
        for name, p in self.procs.items():
            assert p.poll() is None, f"{name} exited with {p.returncode}: {self.log(name)[-3000:]}"

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def settings_for(env: dict[str, str]) -> Any:
    from flows.settings import Settings

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def pa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefect_server: str) -> Any:
    """Settings of an isolated local-store instance, exported to this process's environment
    (for in-process `privacy-analytics process` runs against the test Prefect server)."""
    env = make_pa_env(tmp_path / "state")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return settings_for(env)
