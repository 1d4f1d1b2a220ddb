"""The production topology of infra/compose.yaml, run for real on one machine, without containers.

    python -m flows.topology [--state DIR] [--workers 3] [--run-limit 2] ...

Every process is the one compose runs, started through the image's entrypoint
(infra/docker/entrypoint.sh: ``NAME_FILE`` secrets become ``NAME``) with the variables of its
compose service; ``tests/unit/infra/test_topology.py`` keeps the two in step:

    topology process      compose service   what runs
    postgres              postgres          a private cluster (flows/pgcluster.py) set up by
                                            infra/postgres/initdb.d/10-databases.sh
    store-migrate         store-migrate     the aggregate schema, as pa_writer
    prefect-server        prefect-server    `prefect server start` on PostgreSQL (role prefect)
    receiver              receiver          python -m flows.receiver
    minio                 minio             moto's S3 server (no MinIO here), and
    minio-notify          minio               MinIO's webhook notifications (flows/notifier.py)
    minio-setup           minio-setup       bucket and webhook target (flows/notifier.py setup)
    pipeline-1..N         pipeline          python -m flows.serve (served deployments)
    dashboard             dashboard         python -m dashboard, as pa_reader

Not run: ``s3-upload`` (the dashboard's upload gateway: the dashboard talks to the S3 server
directly here) and the work-pool profile (``deploy-workpool``, ``worker``). What one machine
cannot show: networks (everything shares loopback) and bucket policies (moto accepts any
key). What it does show: the secrets each process gets (only its service's), the database
roles (pa_writer owns the store, pa_reader reads it, prefect owns Prefect's database), the
event path on PostgreSQL, several workers sharing one server, bucket and store.

Secrets come from infra/secrets/generate.sh, run into ``<state>/secrets``. Long-running
processes are restarted when they die (compose's ``restart: unless-stopped``); Ctrl-C or
SIGTERM stops everything, and so does the end of ``Topology``'s ``with`` block.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from flows.pgcluster import PgCluster
from flows.proctree import cmdline, descendants, http_ok, kill_tree, parent_of, stat_fields
from flows.topology_services import ENTRYPOINT, INFRA, ROOT, Plan, ProcessSpec, specs
from flows.up import _die_with_parent
from privacy.errors import PipelineError

log = logging.getLogger("privacy_analytics.topology")

GRACE_SECONDS = 15.0


def _base_env(home: Path) -> dict[str, str]:
    """What a container has besides its service's variables: no PA_/PREFECT_/PG/AWS/MINIO
    variables of the caller (a test's Prefect server must never leak into the topology)."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


@dataclass
class _Running:
    spec: ProcessSpec
    proc: subprocess.Popen[bytes]
    stopped: bool = False
    restarts: int = 0


class Topology:
    """Start, supervise, fault and stop the processes of a Plan."""

    def __init__(self, plan: Plan, out: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.out = out
        self.logs = plan.state / "logs"
        self.pg: PgCluster | None = None
        self.running: dict[str, _Running] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._requests: queue.Queue[tuple[ProcessSpec, Future[_Running]]] = queue.Queue()
        self._watcher: threading.Thread | None = None
        self._supervising = False
        self.specs = {s.name: s for s in specs(plan)}

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Topology:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        plan = self.plan
        plan.state.mkdir(parents=True, exist_ok=True)
        self._watcher = threading.Thread(target=self._supervise, name="topology", daemon=True)
        self._watcher.start()
        self._secrets()
        self.out(f"postgres: private cluster on 127.0.0.1:{plan.pg_port}")
        self.pg = PgCluster(plan.pg_port)
        # where it lives, for a caller cleaning up after a killed topology
        (plan.state / "postgres.dir").write_text(str(self.pg.data) + "\n")
        self.pg.init(plan.secrets)
        self.pg.start()
        self.pg.set_up(plan.secrets)
        for spec in self.specs.values():
            if spec.service == "pipeline" and spec.name != "pipeline-1":
                continue  # after the first has registered the deployments
            self._launch(spec)
            if spec.one_shot:
                self._wait_exit(spec.name, 180)
            elif spec.ready:
                self._wait_ready(spec.name, 180)
            if spec.name == "pipeline-1":
                for name in ("process-object/process-object", "sweep-landing/sweep-landing"):
                    self._wait_url(f"{plan.api_url}/deployments/name/{name}", 120, spec.name)
                for other in self.specs.values():  # one at a time: each re-applies triggers
                    if other.service == "pipeline" and other.name != "pipeline-1":
                        self._launch(other)
                        self._wait_ready(other.name, 180)
        self._supervising = True

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._lock:
            for r in reversed(list(self.running.values())):
                r.stopped = True
                if r.proc.poll() is None:
                    kill_tree(r.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + GRACE_SECONDS
            for r in reversed(list(self.running.values())):
                try:
                    r.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    kill_tree(r.proc.pid, signal.SIGKILL)
                    r.proc.wait()
                # flow runs left behind by a runner that died on its own
                for p in descendants(r.proc.pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
        if self.pg is not None:
            self.pg.stop()
            self.pg = None

    def _secrets(self) -> None:
        """infra/secrets/generate.sh into <state>/secrets (it writes next to itself)."""
        d = self.plan.secrets
        d.mkdir(parents=True, exist_ok=True)
        script = d / "generate.sh"
        shutil.copy(INFRA / "secrets" / "generate.sh", script)
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                              check=False)
        if proc.returncode != 0:
            raise PipelineError(f"infra/secrets/generate.sh failed: {proc.stderr[-800:]}")
        found = re.search(r"user admin \(operator\): password (\w+)", proc.stderr)
        if found:  # printed once, on the first run: keep it for the operator
            path = d / "dashboard_admin_password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(found.group(1) + "\n")

    # ------------------------------------------------------------------ processes

    def env_of(self, spec: ProcessSpec) -> dict[str, str]:
        home = self.plan.state / "home" / spec.name
        for sub in ("state", ".prefect"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        return {**_base_env(home), **spec.image_env, **spec.env}

    def _launch(self, spec: ProcessSpec) -> _Running:
        """Start a process from the supervisor thread: children are tied to the thread that
        started them (PR_SET_PDEATHSIG), and that thread lives until ``stop``."""
        if threading.current_thread() is self._watcher:
            return self._popen(spec)
        done: Future[_Running] = Future()
        self._requests.put((spec, done))
        return done.result(timeout=60)

    def _popen(self, spec: ProcessSpec) -> _Running:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{spec.name}.log").open("ab") as out:
            proc = subprocess.Popen(
                ["bash", str(ENTRYPOINT), *spec.argv], env=self.env_of(spec), cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )
        with self._lock:
            prior = self.running.get(spec.name)
            r = _Running(spec, proc, restarts=prior.restarts + 1 if prior else 0)
            self.running[spec.name] = r
        log.info("started %s (pid %d)", spec.name, proc.pid)
        return r

    def log_tail(self, name: str, chars: int = 3000) -> str:
        p = self.logs / f"{name}.log"
        return p.read_text(errors="replace")[-chars:] if p.exists() else ""

    def _wait_exit(self, name: str, timeout: float) -> None:
        r = self.running[name]
        try:
            code = r.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PipelineError(f"{name} did not finish in {timeout:.0f}s") from None
        if code != 0:
            raise PipelineError(f"{name} exited with {code}: {self.log_tail(name)}")

    def _wait_url(self, url: str, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.running[name]
            if r.proc.poll() is not None:
                raise PipelineError(f"{name} exited with {r.proc.returncode} during start-up: "
                                    f"{self.log_tail(name)}")
            if http_ok(url):
                return
            time.sleep(0.3)
        raise PipelineError(f"{name}: {url} did not answer within {timeout:.0f}s")

    def _wait_ready(self, name: str, timeout: float) -> None:
        ready = self.running[name].spec.ready
        if ready:
            self._wait_url(ready, timeout, name)

    def _supervise(self) -> None:
        """Start what is asked for; and compose's `restart: unless-stopped`: a long-running
        process that died is started again (one at a time, a second later)."""
        while not self._stop.is_set():
            try:
                spec, done = self._requests.get(timeout=1.0)
            except queue.Empty:
                pass
            else:
                try:
                    done.set_result(self._popen(spec))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    done.set_exception(exc)
                continue
            if not self._supervising:
                continue
            with self._lock:
                dead = [r for r in self.running.values()
                        if not r.spec.one_shot and not r.stopped and r.proc.poll() is not None]
            for r in dead:
                if self._stop.is_set():
                    return
                self.out(f"{r.spec.name} exited with {r.proc.returncode}; restarting it")
                for p in descendants(r.proc.pid):  # orphaned flow runs of a dead runner
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
                self._popen(r.spec)

    # ------------------------------------------------------------------ faults

    def kill(self, name: str) -> int:
        """SIGKILL a process and everything it started, as a lost container or host would
        (its flow runs die with it). The supervisor restarts it. Returns processes killed."""
        with self._lock:
            r = self.running[name]
            tree = [r.proc.pid, *descendants(r.proc.pid)]
            for p in tree:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
            r.proc.wait()
        return len(tree)

    def restart(self, name: str, timeout: float = 180) -> float:
        """Stop a process (SIGTERM, then SIGKILL), start it again, wait until it answers;
        returns the seconds it was away."""
        started = time.monotonic()
        with self._lock:
            r = self.running[name]
            r.stopped = True
            kill_tree(r.proc.pid, signal.SIGTERM)
            try:
                r.proc.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                kill_tree(r.proc.pid, signal.SIGKILL)
                r.proc.wait()
        self._launch(r.spec)
        self._wait_ready(name, timeout)
        return time.monotonic() - started

    def flow_processes(self, name: str) -> list[int]:
        """Flow-run processes of a pipeline worker: children of its fork server (warm start)
        or of the runner itself."""
        pid = self.running[name].proc.pid
        parent = {p: parent_of(p) for p in descendants(pid)}
        # the fork server is the runner's child; its children, forked, share its command line
        servers = {p for p in parent if parent[p] == pid and "forkserver" in cmdline(p)}
        parents = servers or {pid}
        return [p for p, pp in parent.items() if pp in parents and p not in servers
                and "resource_tracker" not in cmdline(p)]

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far per service (the process, its live descendants and the
        children it has reaped: a runner's finished flow runs, PostgreSQL's backends)."""
        tick = os.sysconf("SC_CLK_TCK")
        by: dict[str, float] = {}
        with self._lock:
            current = {n: r.proc.pid for n, r in self.running.items()}
        pids = {**current}
        if self.pg is not None and self.pg.pid() is not None:
            pids["postgres"] = self.pg.pid()  # type: ignore[assignment]
        for name, pid in pids.items():
            total = 0.0
            for i, p in enumerate([pid, *descendants(pid)]):
                f = stat_fields(p)
                if f:  # utime stime (+ cutime cstime of the top process only: no double count)
                    total += (f[12] + f[13] + (f[14] + f[15] if i == 0 else 0)) / tick
            service = self.specs[name].service if name in self.specs else name
            by[service] = by.get(service, 0.0) + total
        return by

    def workers(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.service == "pipeline"]

    def urls(self) -> dict[str, str]:
        p = self.plan
        urls = {
            "Prefect UI": p.ui_url,
            "webhook receiver": f"http://127.0.0.1:{p.receiver_port}/minio/events",
            "S3 server (moto)": f"http://127.0.0.1:{p.s3_port} (bucket {p.bucket})",
            "PostgreSQL": f"127.0.0.1:{p.pg_port} (databases prefect, aggregates)",
        }
        if p.dashboard:
            urls["dashboard"] = f"http://127.0.0.1:{p.dashboard_port}/"
        return urls


# --------------------------------------------------------------------------- command line


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.topology", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--state", type=Path, default=Path(".pa-topology"),
                    help="folder for secrets, logs and homes (default .pa-topology)")
    ap.add_argument("--workers", type=int, default=3, help="pipeline replicas (default 3)")
    ap.add_argument("--run-limit", type=int, default=2, help="PA_RUN_LIMIT per worker")
    ap.add_argument("--dataset-run-limit", type=int, default=1, help="PA_DATASET_RUN_LIMIT")
    ap.add_argument("--sweep-interval", type=int, default=300, help="PA_SWEEP_INTERVAL_SECONDS")
    ap.add_argument("--reservation-timeout", type=int, default=1800,
                    help="PA_RESERVATION_TIMEOUT_SECONDS")
    ap.add_argument("--contracts", type=Path, default=ROOT / "contracts")
    ap.add_argument("--prefect-port", type=int, default=4200)
    ap.add_argument("--dashboard-port", type=int, default=8050)
    args = ap.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s topology %(levelname)s %(message)s")
    plan = Plan.local(
        args.state, workers=args.workers, run_limit=args.run_limit,
        dataset_run_limit=args.dataset_run_limit, sweep_interval_seconds=args.sweep_interval,
        reservation_timeout_seconds=args.reservation_timeout, contracts_dir=args.contracts,
        prefect_port=args.prefect_port, dashboard_port=args.dashboard_port,
    )
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _f: stop.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _f: stop.append(signum))
    topo = Topology(plan, out=_out)
    try:
        topo.start()
        _out("\nthe topology is up")
        for what, url in topo.urls().items():
            _out(f"  {what:<17} {url}")
        _out(f"  logs              {topo.logs}")
        _out(f"  secrets           {plan.secrets}   (Ctrl-C stops everything)")
        while not stop:
            time.sleep(0.5)
        return 0
    except PipelineError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    finally:
        _out("stopping ...")
        topo.stop()


if __name__ == "__main__":
    sys.exit(main())
