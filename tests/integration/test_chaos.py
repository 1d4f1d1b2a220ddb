"""System test: the production topology under a burst and every fault (bench/chaos.py).

100 files across 5 datasets within 30 seconds (duplicate webhook deliveries included), one
pipeline worker SIGKILLed with its flow runs, the Prefect server (on PostgreSQL) restarted
mid-burst, the S3 server unreachable for 10 seconds; then the sweep reconciles. Every file must
end published or quarantined exactly once, the ledger's spend must equal published files x ε,
and each file must have one Completed or Rejected run in Prefect.

Short sweep interval and reservation timeout (settings of the test topology) keep it to a few
minutes. Everything it starts is stopped even when it fails: the chaos process on SIGTERM
stops its topology; its children die with it (PR_SET_PDEATHSIG); the private PostgreSQL
cluster (a daemon) is stopped here from the folder the topology records.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from flows.pgcluster import pg_bin
from tests.integration.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LAST_LINE = re.compile(
    r"^chaos: files=(?P<files>\d+) published=(?P<published>\d+) quarantined=(?P<quarantined>\d+)"
    r" lost=(?P<lost>\d+) double_spent=(?P<double>\d+) p50_s=(?P<p50>[\d.]+)"
    r" p95_s=(?P<p95>[\d.]+)$"
)


def _stop_leftover_postgres(state: Path) -> None:
    record = state / "topology" / "postgres.dir"
    if not record.is_file():
        return
    data = Path(record.read_text().strip())
    if (data / "postmaster.pid").exists():
        sudo = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*sudo, pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                        "stop"], capture_output=True, timeout=60, check=False)
    shutil.rmtree(data.parent, ignore_errors=True)


@pytest.mark.timeout(1500)
def test_a_burst_with_faults_is_reconciled_exactly_once(tmp_path: Path) -> None:
    state = tmp_path / "chaos"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PA_", "PREFECT_"))}
    argv = [sys.executable, str(ROOT / "bench" / "chaos.py"), "--files", "100", "--window", "30",
            "--workers", "3", "--run-limit", "2", "--sweep-interval", "20",
            "--reservation-timeout", "60", "--timeout", "900", "--state", str(state)]
    log = tmp_path / "chaos.log"
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        code = proc.wait(timeout=1380)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the topology stops cleanly
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        _stop_leftover_postgres(state)
    text = log.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.startswith("chaos: ")]
    assert code == 0, f"chaos exited with {code}:\n" + "\n".join(lines[-40:] or [text[-4000:]])
    m = LAST_LINE.match(lines[-1])
    assert m, lines[-1]
    assert m["files"] == "100" and m["lost"] == "0" and m["double"] == "0"
    assert int(m["published"]) + int(m["quarantined"]) == 100 and int(m["quarantined"]) == 5
    for fault in ("SIGKILL pipeline-", "Prefect server restarted", "S3 server unreachable"):
        assert any(fault in line for line in lines), f"fault not injected: {fault}"
    assert any("files without exactly one Completed/Rejected run: 0" in line for line in lines)
    shutil.rmtree(state, ignore_errors=True)
