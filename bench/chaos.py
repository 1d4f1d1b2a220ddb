"""Chaos run of the production topology: a burst, duplicate deliveries and three faults.

Starts the topology of flows/topology.py (Prefect server on PostgreSQL, N served pipeline
workers, the webhook receiver, moto's S3 server with MinIO-format notifications, the
PostgreSQL aggregate store with pa_writer/pa_reader, the dashboard), then:

- drops ``--files`` small files across 5 datasets within ``--window`` seconds (a share of them
  structurally broken, so they must be quarantined), and posts a second MinIO notification
  for a share of them (duplicate webhook deliveries);
- SIGKILLs one pipeline worker with its flow runs while it is running some (the topology
  restarts it, as `restart: unless-stopped` would);
- restarts the Prefect server mid-burst;
- makes the S3 server unreachable for 10 seconds (a proxy between the pipeline and the
  server refuses and cuts connections);
- waits until everything is reconciled (the sweep re-emits what was lost), then checks:
  every file published or quarantined exactly once, the ledger's spend equals published
  files x epsilon, each file has one Completed (published) or Rejected (quarantined)
  `process-object` run in Prefect, no budget reservation still counting.

The last line is ``chaos: files=N published=P quarantined=Q lost=L double_spent=D p50_s=...
p95_s=...`` (drop to published, under the burst); the exit code is 0 only if every check
passed. Screenshots of the Prefect UI during the burst (the per-dataset concurrency limits,
runs queued as AwaitingConcurrencySlot) go to test-output/screenshots/.

    .venv/bin/python bench/chaos.py --files 500
    .venv/bin/python bench/chaos.py --files 100 --window 30 --no-screenshots
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.notifier import minio_record  # noqa: E402
from flows.topology import Topology  # noqa: E402
from flows.topology_services import Plan, free_port  # noqa: E402

DATASETS = [f"chaos_{c}" for c in "abcde"]
#: set by SIGTERM/SIGINT; every loop checks it (a library may swallow the interrupt)
STOPPING = threading.Event()
EPSILON = 0.5
SCREENSHOTS = ROOT / "test-output" / "screenshots"


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --------------------------------------------------------------------------- fault proxy


class Gate:
    """A TCP proxy in front of the S3 server; ``cut(seconds)`` makes it unreachable (connect
    refused, open connections reset) for a while, as a network partition would."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._closed = False
        self._open()

    def _open(self) -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.listen_port))
        srv.listen(128)
        self._listener = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns -= {src, dst}

    def _drop_all(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked on it
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = set(self._conns), set()
        for s in conns:
            with contextlib.suppress(OSError):  # shutdown wakes the pumps blocked on it
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def cut(self, seconds: float) -> None:
        self._drop_all()
        time.sleep(seconds)
        if not self._closed:
            self._open()

    def close(self) -> None:
        self._closed = True
        self._drop_all()


# --------------------------------------------------------------------------- data


def write_contracts(folder: Path) -> None:
    """One contract per chaos dataset: the employee example's columns and analyses, a person
    as privacy unit (at most 8 rows each per file), ε per file EPSILON, a cap far above the
    run's spend (the check is exact accounting, not exhaustion)."""
    import yaml

    base = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for name in DATASETS:
        c = dict(base)
        c["dataset"] = name
        c["description"] = f"chaos-run dataset {name} (synthetic employees)"
        c["budget"] = {**base["budget"], "epsilon_cap": 10_000.0, "epsilon_per_release": EPSILON}
        assert c["privacy_unit"] and c["max_rows_per_unit"]
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(c, sort_keys=False))


def good_file(seed: int, rows: int) -> bytes:
    from flows.demo import employee_frame

    buf = io.BytesIO()
    employee_frame(employees=max(rows // 4, 10), rows=rows, seed=seed).write_csv(buf)
    return buf.getvalue()


def bad_file(seed: int, rows: int) -> bytes:
    """Structurally broken: alternately a declared column missing, or not text at all."""
    if seed % 2:
        return random.Random(seed).randbytes(2048)
    from flows.demo import employee_frame

    buf = io.BytesIO()
    employee_frame(employees=max(rows // 4, 10), rows=rows, seed=seed).drop("efficiency").write_csv(buf)
    return buf.getvalue()


@dataclass
class Dropped:
    dataset: str
    key: str
    etag: str
    size: int
    bad: bool
    at: float  # wall clock (time.time())


@dataclass
class Faults:
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the run


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state) if args.state else Path(tempfile.mkdtemp(prefix="pa-chaos-"))
        self.state.mkdir(parents=True, exist_ok=True)
        contracts = self.state / "contracts"
        write_contracts(contracts)
        self.s3_port, gate_port = free_port(), free_port()
        self.plan = Plan.local(
            self.state / "topology", workers=args.workers, run_limit=args.run_limit,
            dataset_run_limit=args.dataset_run_limit, sweep_interval_seconds=args.sweep_interval,
            reservation_timeout_seconds=args.reservation_timeout, contracts_dir=contracts,
            s3_port=self.s3_port, s3_client_port=gate_port, dashboard=not args.no_dashboard,
        )
        self.gate = Gate(gate_port, self.s3_port)
        # this process reads the topology's Prefect API (before Prefect is first imported)
        for var in [v for v in os.environ if v.startswith(("PREFECT_", "PA_"))]:
            del os.environ[var]
        os.environ.update(
            PREFECT_API_URL=self.plan.api_url, PREFECT_HOME=str(self.state / "prefect-client"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        self.topo = Topology(self.plan, out=lambda line: out(f"chaos: {line}"))
        self.dropped: list[Dropped] = []
        self.faults = Faults()
        self.t0 = 0.0
        self.shots: list[Path] = []

    # ------------------------------------------------------------------ helpers

    def secret(self, name: str) -> str:
        return (self.plan.secrets / name).read_text().strip()

    def minio(self) -> Any:
        from minio import Minio

        return Minio(f"127.0.0.1:{self.s3_port}", access_key="pa-uploader",
                     secret_key=self.secret("s3_uploader_secret_key"), secure=False,
                     region="us-east-1")

    def engine(self) -> Any:
        from sqlalchemy import create_engine

        os.environ["PGPASSWORD"] = self.secret("store_writer_password")
        return create_engine(self.plan.writer_url, pool_pre_ping=True)

    def since(self) -> float:
        return time.monotonic() - self.t0

    def prefect_runs(self) -> list[Any]:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

        found: list[Any] = []
        with get_client(sync_client=True) as client:
            while True:
                page = client.read_flow_runs(
                    deployment_filter=DeploymentFilter(
                        name=DeploymentFilterName(any_=["process-object"])),
                    limit=200, offset=len(found))
                found.extend(page)
                if len(page) < 200:
                    return found

    # ------------------------------------------------------------------ phases

    def drop_burst(self) -> None:
        """N files round-robin over the datasets, evenly within the window; duplicates of a
        share of the notifications, 0.2-3 s after the drop."""
        a = self.args
        client = self.minio()
        rng = random.Random(a.seed)
        bad = set(rng.sample(range(a.files), round(a.files * a.bad_share)))
        dups = set(rng.sample(range(a.files), round(a.files * a.dup_share)))
        pending: list[tuple[float, Dropped]] = []
        url = f"http://127.0.0.1:{self.plan.receiver_port}/minio/events"
        token = self.secret("receiver_token")
        sent_dups = 0
        for i in range(a.files):
            _check_stop()
            due = self.t0 + i * a.window / a.files
            while time.monotonic() < due:
                while pending and pending[0][0] <= time.monotonic():
                    _, d = pending.pop(0)
                    sent_dups += self._post(url, token, d)
                time.sleep(min(0.02, max(due - time.monotonic(), 0)))
            dataset = DATASETS[i % len(DATASETS)]
            data = bad_file(i, a.rows) if i in bad else good_file(i, a.rows)
            key = f"landing/{dataset}/chaos-{i:05d}.csv"
            for attempt in range(20):  # the S3 server itself stays reachable for uploaders
                try:
                    res = client.put_object(self.plan.bucket, key, io.BytesIO(data), len(data))
                    break
                except Exception:
                    if attempt == 19:
                        raise
                    time.sleep(0.5)
            d = Dropped(dataset, key, res.etag.strip('"'), len(data), i in bad, time.time())
            self.dropped.append(d)
            if i in dups:
                pending.append((time.monotonic() + rng.uniform(0.2, 3.0), d))
                pending.sort(key=lambda p: p[0])
        for due, d in pending:
            time.sleep(max(due - time.monotonic(), 0))
            sent_dups += self._post(url, token, d)
        n_bad = sum(d.bad for d in self.dropped)
        out(f"chaos: dropped {len(self.dropped)} files ({n_bad} broken) across "
            f"{len(DATASETS)} datasets in {self.since():.1f} s; {sent_dups} duplicate webhook "
            "deliveries")

    @staticmethod
    def _post(url: str, token: str, d: Dropped) -> int:
        body = json.dumps(minio_record("privacy-analytics", d.key, d.etag, d.size)).encode()
        for _ in range(30):  # the receiver answers 503 while Prefect restarts: retry, as MinIO
            req = urllib.request.Request(url, data=body, method="POST", headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    if r.status < 300:
                        return 1
            except OSError:
                pass
            time.sleep(1)
        return 0

    def fault_timeline(self) -> None:
        """Kill a busy worker, restart the Prefect server, cut S3, at fixed points of the
        window (a thread beside the burst)."""
        w = self.args.window
        try:
            self._at(0.25 * w)
            self._kill_busy_worker()
            self._at(0.40 * w)
            t = self.since()
            away = self.topo.restart("prefect-server")
            self.faults.lines.append(f"fault: Prefect server restarted at {t:.1f} s "
                                     f"(API away {away:.1f} s)")
            out(f"chaos: {self.faults.lines[-1]}")
            self._at(0.80 * w)
            t = self.since()
            self.gate.cut(self.args.s3_outage)
            self.faults.lines.append(f"fault: S3 server unreachable {t:.1f}-{self.since():.1f} s")
            out(f"chaos: {self.faults.lines[-1]}")
            if self.args.screenshots:
                self._at(1.0 * w + 5)
                self.screenshots()
        except Exception as exc:  # noqa: BLE001 - reported as a failed check
            self.faults.errors.append(f"fault timeline: {type(exc).__name__}: {exc}")
            out(f"chaos: {self.faults.errors[-1]}")

    def _at(self, t: float) -> None:
        time.sleep(max(t - self.since(), 0))

    def _kill_busy_worker(self) -> None:
        deadline = time.monotonic() + 20
        while True:
            busy = {w: self.topo.flow_processes(w) for w in self.topo.workers()}
            victim = max(busy, key=lambda w: len(busy[w]))
            if busy[victim] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        t = self.since()
        killed = self.topo.kill(victim)
        self.faults.lines.append(
            f"fault: SIGKILL {victim} at {t:.1f} s ({killed} processes, "
            f"{len(busy[victim])} flow run(s) in progress)")
        out(f"chaos: {self.faults.lines[-1]}")

    def _queue_view(self) -> tuple[int, str | None]:
        """(limits with a slot taken, id of a run waiting as AwaitingConcurrencySlot)."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterState,
            FlowRunFilterStateName,
        )

        with get_client(sync_client=True) as client:
            limits = client.read_global_concurrency_limits(limit=50)
            waiting = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                name=FlowRunFilterStateName(any_=["AwaitingConcurrencySlot"]))), limit=1)
        busy = sum(1 for x in limits if x.name.startswith("pa-dataset-") and x.active_slots)
        return busy, (str(waiting[0].id) if waiting else None)

    def screenshots(self) -> None:
        """The Prefect UI during the burst: the per-dataset limits with their slots taken, the
        runs, and one run waiting for its dataset's slot."""
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        deadline, busy, waiting = time.monotonic() + 60, 0, None
        while time.monotonic() < deadline:  # a moment when the queue shows
            with contextlib.suppress(Exception):
                busy, waiting = self._queue_view()
            if busy >= 3 and waiting:
                break
            time.sleep(1)

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        profile = tempfile.mkdtemp(prefix="pa-chaos-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-dev-shm-usage", "--disable-background-networking",
                    f"--user-data-dir={profile}"):
            options.add_argument(arg)
        drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            drv.set_window_size(1440, 1000)
            drv.set_page_load_timeout(60)
            pages = [("concurrency-limits", "chaos-prefect-concurrency-limits.png"),
                     ("runs", "chaos-prefect-runs.png")]
            if waiting:
                pages.append((f"runs/flow-run/{waiting}", "chaos-prefect-awaiting-slot.png"))
            for page, name in pages:
                drv.get(f"{self.plan.ui_url}/{page}")
                time.sleep(6)  # the UI is a single-page app: let it fetch and render
                path = SCREENSHOTS / name
                drv.save_screenshot(str(path))
                self.shots.append(path)
        finally:
            drv.quit()
            shutil.rmtree(profile, ignore_errors=True)
        out(f"chaos: screenshots at {self.since():.1f} s ({busy} dataset limits with their "
            f"slot taken, runs waiting: {'yes' if waiting else 'no'}): "
            f"{', '.join(map(str, self.shots))}")

    # ------------------------------------------------------------------ reconciliation

    def outcome(self) -> dict[str, Any]:
        """Where each dropped file is now: published (store), quarantined (bucket), landing."""
        from sqlalchemy import text

        eng = self.engine()
        with eng.connect() as conn:
            published = {r.key: r.published_at for r in conn.execute(text(
                "select key, etag, published_at from published_objects"))}
        eng.dispose()
        client = self.minio_root()
        quarantined = {o.object_name.replace("quarantine/", "landing/", 1)
                       for o in client.list_objects(self.plan.bucket, prefix="quarantine/",
                                                    recursive=True)
                       if not o.object_name.endswith(".report.json")}
        landing = {o.object_name for o in client.list_objects(
            self.plan.bucket, prefix="landing/", recursive=True)}
        return {"published": published, "quarantined": quarantined, "landing": landing}

    def minio_root(self) -> Any:
        from minio import Minio

        return Minio(f"127.0.0.1:{self.s3_port}", access_key=self.secret("minio_root_user"),
                     secret_key=self.secret("minio_root_password"), secure=False,
                     region="us-east-1")

    def wait_reconciled(self) -> float | None:
        """Seconds from the first drop until every file is published or quarantined and no
        run is on its way (runs presumed dead after the reservation timeout aside)."""
        deadline = time.monotonic() + self.args.timeout
        keys = {d.key for d in self.dropped}
        shown = 0.0
        while time.monotonic() < deadline:
            _check_stop()
            try:
                o = self.outcome()
                done = {k for k in keys if k in o["published"] or k in o["quarantined"]}
                live = self._live_runs()
            except Exception:  # noqa: BLE001 - a service restarting: look again
                time.sleep(5)
                continue
            if time.monotonic() - shown > 30:
                out(f"chaos: {self.since():6.1f} s  {len(done)}/{len(keys)} files published "
                    f"or quarantined, {live} run(s) on the way")
                shown = time.monotonic()
            if len(done) == len(keys) and live == 0 and not (keys & o["landing"]):
                return self.since()
            time.sleep(5)
        return None

    def _live_runs(self) -> int:
        live = 0
        now = datetime.now(UTC)
        for r in self.prefect_runs():
            st = r.state
            if st is None or st.is_final():
                continue
            since = st.timestamp if st.is_pending() else r.start_time
            if (st.is_running() or st.is_pending()) and since is not None and (
                    now - since).total_seconds() > self.args.reservation_timeout:
                continue  # presumed dead (its worker was killed); the sweep re-emitted it
            live += 1
        return live

    def wait_reservations_expired(self) -> int:
        """Live reservations (reserved, not yet expired) after waiting up to the timeout."""
        from sqlalchemy import text

        eng = self.engine()
        deadline = time.monotonic() + self.args.reservation_timeout + 30
        try:
            while True:
                with eng.connect() as conn:
                    live = conn.execute(text(
                        "select count(*) from ledger where state = 'reserved' and "
                        "created_at > now() - make_interval(secs => :t)"),
                        {"t": self.args.reservation_timeout}).scalar_one()
                if live == 0 or time.monotonic() > deadline:
                    return int(live)
                _check_stop()
                time.sleep(3)
        finally:
            eng.dispose()

    # ------------------------------------------------------------------ checks

    def check(self, reconciled: float | None) -> tuple[list[str], dict[str, Any]]:
        from sqlalchemy import text

        problems: list[str] = list(self.faults.errors)
        if reconciled is None:
            problems.append(f"not reconciled within {self.args.timeout} s")
        o = self.outcome()
        eng = self.engine()
        with eng.connect() as conn:
            ledger = conn.execute(text(
                "select key, etag, state, epsilon, created_at from ledger")).all()
            published_rows = conn.execute(text(
                "select key, count(*) from published_objects group by key")).all()
        eng.dispose()
        by_file = {d.key: d for d in self.dropped}
        published = {k for k in by_file if k in o["published"]}
        quarantined = {k for k in by_file if k in o["quarantined"]}
        both = published & quarantined
        lost = set(by_file) - published - quarantined
        if both:
            problems.append(f"{len(both)} file(s) both published and quarantined")
        wrong = [k for k in published if by_file[k].bad] + [k for k in quarantined
                                                             if not by_file[k].bad]
        if wrong:
            problems.append(f"{len(wrong)} file(s) published/quarantined against their kind")
        if any(n != 1 for _, n in published_rows):
            problems.append("an object version published more than once")
        committed = Counter(r.key for r in ledger if r.state == "committed")
        double = sum(abs(committed.get(k, 0) - (k in published)) for k in by_file)
        double += sum(n for k, n in committed.items() if k not in by_file)
        spent = sum(r.epsilon for r in ledger if r.state == "committed")
        if abs(spent - len(published) * EPSILON) > 1e-6:
            problems.append(f"ledger spend {spent:g} != {len(published)} x {EPSILON:g}")
        reserved = [r for r in ledger if r.state == "reserved"]
        live_reserved = self.wait_reservations_expired()
        if live_reserved:
            problems.append(f"{live_reserved} reservation(s) still counting")
        # Prefect: one Completed run per published file, one Rejected per quarantined one
        runs_by_key: dict[str, Counter[str]] = defaultdict(Counter)
        states: Counter[str] = Counter()
        phases: dict[str, list[float]] = defaultdict(list)  # of the publishing runs
        for r in self.prefect_runs():
            name = r.state.name if r.state else "?"
            states[name] += 1
            key = (r.parameters or {}).get("key")
            if key in by_file:
                runs_by_key[key][name] += 1
            if key in by_file and name == "Completed" and r.end_time is not None:
                running = r.total_run_time.total_seconds()
                phases["event"].append(r.created.timestamp() - by_file[key].at)
                phases["queued"].append((r.end_time - r.created).total_seconds() - running)
                phases["running"].append(running)
                phases["attempts"].append(float(r.run_count))
        bad_runs = [k for k in by_file if
                    (k in published and runs_by_key[k]["Completed"] != 1)
                    or (k in quarantined and runs_by_key[k]["Rejected"] != 1)
                    or runs_by_key[k]["Completed"] + runs_by_key[k]["Rejected"] != 1]
        if bad_runs:
            problems.append(f"{len(bad_runs)} file(s) without exactly one Completed or "
                            f"Rejected run (e.g. {bad_runs[0]}: {dict(runs_by_key[bad_runs[0]])})")
        latencies = [(o["published"][k].timestamp() - by_file[k].at) for k in published]
        figures = {
            "files": len(by_file), "published": len(published), "quarantined": len(quarantined),
            "lost": len(lost), "double_spent": double,
            "p50": statistics.median(latencies) if latencies else float("nan"),
            "p95": percentile(latencies, 0.95) if latencies else float("nan"),
            "states": states, "reserved": len(reserved), "spent": spent,
            "committed": sum(committed.values()), "bad_runs": len(bad_runs),
            "phases": {k: statistics.median(v) for k, v in phases.items() if v},
        }
        return problems, figures

    # ------------------------------------------------------------------ main

    def run(self) -> int:
        a = self.args
        started = time.monotonic()
        with self.topo:
            out(f"chaos: topology up in {time.monotonic() - started:.0f} s: {a.workers} "
                f"workers x {a.run_limit} runs, {a.dataset_run_limit} run(s) per dataset, "
                f"sweep every {a.sweep_interval} s, reservations expire after "
                f"{a.reservation_timeout} s; Prefect UI {self.plan.ui_url}")
            self.t0 = time.monotonic()
            faults = threading.Thread(target=self.fault_timeline, name="faults", daemon=True)
            if not a.no_faults:
                faults.start()
            self.drop_burst()
            if faults.is_alive():
                faults.join()
            reconciled = self.wait_reconciled()
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            if reconciled is not None:
                out(f"chaos: reconciled {reconciled:.0f} s after the first drop (every file "
                    f"published or quarantined, landing/ empty, no run on its way); load "
                    f"average {load}")
            cpu = self.topo.cpu_seconds()
            cpu["chaos (drops, checks, proxy)"] = sum(os.times()[:2])
            problems, f = self.check(reconciled)
            restarts = {n: r.restarts for n, r in self.topo.running.items() if r.restarts}
        out(f"chaos: prefect process-object runs: {sum(f['states'].values())} "
            f"({', '.join(f'{n} {k}' for k, n in f['states'].most_common())}); "
            f"files without exactly one Completed/Rejected run: {f['bad_runs']}")
        out(f"chaos: ledger: {f['committed']} committed entries, spend {f['spent']:g} = "
            f"{f['published']} x {EPSILON:g}: {abs(f['spent'] - f['published'] * EPSILON) < 1e-6}"
            f"; {f['reserved']} reservation(s) never committed, none still counting: "
            f"{not any('still counting' in p for p in problems)}")
        ph = f["phases"]
        if ph:
            out(f"chaos: publishing runs, medians: drop to run created {ph['event']:.1f} s, "
                f"queued (incl. AwaitingConcurrencySlot) {ph['queued']:.1f} s, running "
                f"{ph['running']:.1f} s, attempts {ph['attempts']:.0f}")
        out(f"chaos: process restarts: {restarts or 'none'}")
        out("chaos: CPU seconds by service (killed processes not counted): " + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])))
        for p in problems:
            out(f"chaos: FAILED: {p}")
        out(f"chaos: files={f['files']} published={f['published']} "
            f"quarantined={f['quarantined']} lost={f['lost']} double_spent={f['double_spent']} "
            f"p50_s={f['p50']:.1f} p95_s={f['p95']:.1f}")
        self.gate.close()
        if not a.state and not problems:
            shutil.rmtree(self.state, ignore_errors=True)
        return 1 if problems or f["lost"] or f["double_spent"] else 0


def _interrupt(*_: object) -> None:
    STOPPING.set()
    raise KeyboardInterrupt


def _check_stop() -> None:
    if STOPPING.is_set():
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--window", type=float, default=60.0, help="drop window in seconds")
    ap.add_argument("--rows", type=int, default=120, help="rows per file")
    ap.add_argument("--bad-share", type=float, default=0.05, help="share of broken files")
    ap.add_argument("--dup-share", type=float, default=0.10,
                    help="share of files whose notification is delivered twice")
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--run-limit", type=int, default=2, help="flow runs per worker at once")
    ap.add_argument("--dataset-run-limit", type=int, default=1)
    ap.add_argument("--sweep-interval", type=int, default=15)
    ap.add_argument("--reservation-timeout", type=int, default=60)
    ap.add_argument("--s3-outage", type=float, default=10.0, help="seconds S3 is unreachable")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="longest wait for reconciliation after the burst, seconds")
    ap.add_argument("--no-faults", action="store_true", help="burst only")
    ap.add_argument("--no-dashboard", action="store_true")
    ap.add_argument("--screenshots", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--state", help="keep the run's folder here (default: a temporary one, "
                    "removed after a successful run)")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)
    chaos = Chaos(args)
    signal.signal(signal.SIGTERM, _interrupt)  # a SIGTERM stops the topology cleanly too
    signal.signal(signal.SIGINT, _interrupt)
    try:
        return chaos.run()
    except KeyboardInterrupt:
        out("chaos: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
