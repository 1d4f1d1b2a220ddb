"""Drop-to-published latency of the embedded stack.

Starts `privacy-analytics up` in a throw-away state folder, drops 20 small employee files
(about 1,000 rows each) into the local landing folder one after another, and measures for each
the seconds from the drop until its aggregates are published in the aggregate store. Prints
p50 and p95, and, as a baseline measured in the same run, the median time the runs themselves
took (their start to finish as recorded in the store: load, validate, mask, release, publish),
so the ratio shows what event delivery, triggering and run start-up add.

    .venv/bin/python bench/latency.py [--files 20] [--rows 1000] [--gap 1.0]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics.store import AggregateStore, ObjectVersion  # noqa: E402
from flows.demo import write_employee_csv  # noqa: E402
from flows.objectstore import file_digest  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def wait_published(store_url: str, obj: ObjectVersion, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    store: AggregateStore | None = None
    while time.monotonic() < deadline:
        if store is None and Path(store_url.removeprefix("sqlite:///")).exists():
            store = AggregateStore(store_url)
        if store is not None and store.find_published(obj):
            store.close()
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {obj.key}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument(
        "--gap", type=float, default=1.0, help="seconds between a publication and the next drop"
    )
    args = ap.parse_args()

    state = Path(tempfile.mkdtemp(prefix="pa-bench-latency-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PA_", "PREFECT_"))}
    env.update(
        PA_STATE_DIR=str(state),
        PA_CONTRACTS_DIR=str(ROOT / "contracts"),
        PA_PREFECT_PORT=str(free_port()),
        PA_DASHBOARD_PORT=str(free_port()),
        PA_RECEIVER_PORT=str(free_port()),
        PA_WATCH_INTERVAL_SECONDS="0.1",
    )
    srcs = [
        write_employee_csv(
            state / "src" / f"batch-{i:02d}.csv",
            rows=args.rows,
            employees=max(args.rows // 5, 10),
            seed=100 + i,
        )
        for i in range(args.files + 1)
    ]
    # stop the stack on Ctrl-C or SIGTERM too (the finally block below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    log = (state / "up.out").open("wb")
    t0 = time.monotonic()
    up = subprocess.Popen([sys.executable, "-m", "flows.cli", "up"], env=env, cwd=ROOT, stdout=log,
                          stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while "privacy-analytics is up" not in (state / "up.out").read_text(errors="replace"):
            if up.poll() is not None:
                raise SystemExit((state / "up.out").read_text())
            time.sleep(0.2)
        print(f"stack up in {time.monotonic() - t0:.1f}s (state: {state})")
        landing = state / "objects" / "landing" / "employees"
        landing.mkdir(parents=True, exist_ok=True)
        store_url = f"sqlite:///{state / 'aggregates.db'}"
        latencies: list[float] = []
        for i, src in enumerate(srcs):
            obj = ObjectVersion(
                "privacy-analytics",
                f"landing/employees/{src.name}",
                file_digest(src),
                src.stat().st_size,
            )
            tmp = landing / f".{src.name}.part"
            shutil.copy(src, tmp)
            dropped = time.monotonic()
            tmp.rename(landing / src.name)  # an atomic drop
            done = wait_published(store_url, obj, 120)
            if i == 0:
                print(
                    f"warm-up file (first run after start-up, not counted): {done - dropped:.2f}s"
                )
            else:
                latencies.append(done - dropped)
                print(f"file {i:2d}: {done - dropped:.2f}s")
            time.sleep(args.gap)
        p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        print(
            f"\ndrop -> published over {len(latencies)} files of {args.rows} rows: "
            f"p50 {p50:.2f}s  p95 {p95:.2f}s  min {min(latencies):.2f}s  max {max(latencies):.2f}s"
        )
        run_s = [float(x) for x in _run_durations(state)]
        if run_s:
            inner = statistics.median(run_s)
            print(
                f"baseline (same run): median flow-run duration inside Prefect {inner:.2f}s; "
                f"p50 drop->published / flow-run duration = {p50 / inner:.2f}x"
            )
        print(f"load average: {os.getloadavg()}")
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=60)
        except subprocess.TimeoutExpired:
            up.kill()
        log.close()
        shutil.rmtree(state, ignore_errors=True)


def _run_durations(state: Path) -> list[float]:
    """Durations of completed runs (started -> finished) recorded in the aggregate store."""
    import sqlalchemy as sa

    eng = sa.create_engine(f"sqlite:///{state / 'aggregates.db'}")
    with eng.connect() as c:
        rows = c.execute(
            sa.text(
                "select started_at, finished_at from runs"
                " where status = 'completed' and finished_at is not null"
            )
        ).all()
    eng.dispose()
    from datetime import datetime

    out = []
    for a, b in rows:
        a = datetime.fromisoformat(str(a))
        b = datetime.fromisoformat(str(b))
        out.append((b - a).total_seconds())
    return out[1:]


if __name__ == "__main__":
    main()
