"""`privacy-analytics up`: the whole service on one machine, in the foreground.

Starts, in order: the Prefect server (SQLite in the state dir, analytics off), the served
deployments, the folder watcher (local store only), the webhook receiver and the dashboard;
prints their URLs; on Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL after a
grace period) and exits. A child that dies is reported and the whole service stops, so a
supervisor (systemd, a container runtime) can restart it cleanly.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows.settings import Settings
from privacy.errors import PipelineError

log = logging.getLogger("privacy_analytics.up")
GRACE_SECONDS = 10.0


def prefect_env(settings: Settings, api_url: str) -> dict[str, str]:
    """Environment every process of the service shares (Prefect pinned to our server)."""
    ui_url = api_url.removesuffix("/api")
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_UI_URL": ui_url,
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PREFECT_API_DATABASE_CONNECTION_URL": (
            f"sqlite+aiosqlite:///{settings.prefect_home / 'prefect.db'}"
        ),
        # concurrency-limit leases (flows/concurrency.py) survive a restart of the server:
        # in memory, slots held when it stopped would stay taken in its database for good
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": (
            "prefect.server.concurrency.lease_storage.filesystem"
        ),
        "PA_STATE_DIR": str(settings.state),
        "PA_CONTRACTS_DIR": str(settings.contracts_dir.resolve()),
    }


def dashboard_env(settings: Settings, ui_url: str) -> dict[str, str]:
    """The dashboard's whole environment: its own PA_DASHBOARD_* settings and nothing of the
    pipeline's (no object-store credentials, no pseudonym key, no receiver token)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PA_", "PREFECT_", "AWS_", "MINIO_")) or k.startswith("PA_DASHBOARD_")
    }
    base.update(
        {
            "PA_DASHBOARD_STORE_URL": settings.aggregate_store_url,
            "PA_DASHBOARD_HOST": settings.dashboard_host,
            "PA_DASHBOARD_PORT": str(settings.dashboard_port),
            "PA_DASHBOARD_PREFECT_UI_URL": ui_url,
        }
    )
    if not settings.uses_s3:
        # embedded default: uploads are written into the watched landing folder (write-only use)
        base["PA_DASHBOARD_LANDING_DIR"] = str(settings.objects_dir / "landing")
    return base


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: a killed `up` takes its children along
    os.setpgrp()


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]


class Supervisor:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_dir = log_dir
        self.children: list[Child] = []
        self.stopping = False

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = (self.log_dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            env=env if env is not None else self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        child = Child(name, proc)
        self.children.append(child)
        log.info("started %s (pid %d), log: %s", name, proc.pid, self.log_dir / f"{name}.log")
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc.poll() is not None]

    def stop(self) -> None:
        self.stopping = True
        for c in reversed(self.children):
            if c.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for c in reversed(self.children):
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                c.proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", c.name, GRACE_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(c.proc.pid, signal.SIGKILL)
                c.proc.wait()


def wait_http(
    url: str, timeout: float, alive: Callable[[], bool], ok: tuple[int, ...] | None = None
) -> None:
    """Poll ``url`` until it answers (any status below 500, or one of ``ok``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise PipelineError(
                f"a process exited during start-up while waiting for {url}; see the logs"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - our own loopback URL
                if (r.status in ok) if ok else r.status < 500:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise PipelineError(
        f"{url} did not answer within {timeout:.0f}s; see the logs in the state dir"
    )


def prefect_server_argv(port: int) -> list[str]:
    """The Prefect server on the loopback interface, its analytics off."""
    return [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
            "--port", str(port), "--analytics-off"]  # fmt: skip


def _alive(child: Child, stopping: Callable[[], bool]) -> Callable[[], bool]:
    return lambda: child.proc.poll() is None and not stopping()


def _start_prefect(
    sup: Supervisor, settings: Settings, api_url: str, out: Callable[[str], None],
    stopping: Callable[[], bool],
) -> None:  # fmt: skip
    """The Prefect server, then the served deployments, each waited for."""
    server = sup.start("prefect-server", prefect_server_argv(settings.prefect_port))
    out(f"starting the Prefect server (state in {settings.prefect_home}) ...")
    wait_http(f"{api_url}/health", 90, _alive(server, stopping))
    deployments = sup.start("deployments", [sys.executable, "-m", "flows.serve"])
    # events sent before the triggered deployment exists would match no automation
    out("registering the deployments ...")
    for name in ("process-object/process-object", "sweep-landing/sweep-landing"):
        wait_http(
            f"{api_url}/deployments/name/{name}", 120, _alive(deployments, stopping), ok=(200,)
        )


def _start_services(
    sup: Supervisor, settings: Settings, ui_url: str, stopping: Callable[[], bool]
) -> str:
    """The folder watcher (local store only), the receiver and the dashboard; its URL."""
    py = sys.executable
    if not settings.uses_s3:
        sup.start("watcher", [py, "-m", "flows.watcher"])
    sup.start("receiver", [py, "-m", "flows.receiver"])
    dash = sup.start("dashboard", [py, "-m", "dashboard"], env=dashboard_env(settings, ui_url))
    dash_url = f"http://{settings.dashboard_host}:{settings.dashboard_port}/"
    wait_http(dash_url, 60, _alive(dash, stopping))
    return dash_url


def _print_urls(
    settings: Settings, ui_url: str, dash_url: str, out: Callable[[str], None]
) -> None:
    where = (
        settings.objects_dir / "landing"
        if not settings.uses_s3
        else (f"s3://{settings.s3_bucket}/landing/ at {settings.s3_endpoint}")
    )
    out("")
    out("privacy-analytics is up")
    out(f"  Prefect UI      {ui_url}")
    out(f"  dashboard       {dash_url}")
    out(
        f"  event receiver  http://{settings.receiver_host}:{settings.receiver_port}/minio/events"
        f"  (bearer token in {settings.state / 'receiver.token'})"
    )
    out(
        f"  drop files into {where}/<dataset>/  (or: privacy-analytics drop FILE --dataset NAME)"
    )
    out(f"  contracts       {settings.contracts_dir.resolve()}")
    out(f"  logs            {settings.state / 'logs'}")
    out("  try it:         privacy-analytics demo   (Ctrl-C stops everything)")


def _watch(sup: Supervisor, stop_requested: list[int], out: Callable[[str], None]) -> int:
    """Until a stop is requested (0), or a child dies (1)."""
    while not stop_requested:
        dead = sup.dead()
        if dead:
            for c in dead:
                out(
                    f"{c.name} exited with code {c.proc.returncode}; "
                    f"see {sup.log_dir / (c.name + '.log')}"
                )
            return 1
        time.sleep(0.5)
    return 0


def run_up(settings: Settings, *, out: Callable[[str], None]) -> int:
    settings.ensure_secrets()
    settings.pseudonym_key_bytes()  # a short key or a key file others can read: stop here
    settings.prefect_home.mkdir(parents=True, exist_ok=True)
    settings.objects_dir.mkdir(parents=True, exist_ok=True)
    api_url = f"http://127.0.0.1:{settings.prefect_port}/api"
    ui_url = api_url.removesuffix("/api")
    sup = Supervisor(prefect_env(settings, api_url), settings.state / "logs")

    stop_requested: list[int] = []

    def _on_signal(signum: int, _frame: object) -> None:
        stop_requested.append(signum)

    def stopping() -> bool:
        return bool(stop_requested)

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        _start_prefect(sup, settings, api_url, out, stopping)
        dash_url = _start_services(sup, settings, ui_url, stopping)
        _print_urls(settings, ui_url, dash_url, out)
        return _watch(sup, stop_requested, out)
    finally:
        out("stopping ...")
        sup.stop()
        out("stopped")
