"""`privacy-analytics up`: the embedded default end to end, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from analytics.store import AggregateStore, ObjectVersion
from flows.demo import write_employee_csv
from flows.objectstore import file_digest
from tests.browser.conftest import download_dir, driver  # noqa: F401 - shared fixtures
from tests.conftest import free_port
from tests.integration.conftest import ROOT, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("up-state")
    contracts = state / "contracts"
    shutil.copytree(ROOT / "contracts", contracts)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PA_", "PREFECT_"))}
    env.update(
        {
            "PA_STATE_DIR": str(state),
            "PA_CONTRACTS_DIR": str(contracts),
            "PA_PREFECT_PORT": str(free_port()),
            "PA_DASHBOARD_PORT": str(free_port()),
            "PA_RECEIVER_PORT": str(free_port()),
            "PA_WATCH_INTERVAL_SECONDS": "0.2",
        }
    )
    out = (state / "up.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "up"],
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def ready() -> bool:
        text = (state / "up.out").read_text(errors="replace")
        assert proc.poll() is None, f"up exited early:\n{text[-3000:]}"
        return "privacy-analytics is up" in text

    try:
        wait_until(ready, 180, "`up` to print its URLs", interval=0.5)
        yield {"proc": proc, "state": state, "env": env}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        out.close()


def test_up_prints_urls_and_keeps_the_key_secret(up) -> None:
    text = (up["state"] / "up.out").read_text()
    for what in ("Prefect UI", "dashboard", "event receiver"):
        assert what in text
    key_file = up["state"] / "pseudonym.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() not in text
    assert key_file.read_text().strip() not in "".join(
        p.read_text(errors="replace") for p in (up["state"] / "logs").glob("*.log")
    )


def test_file_copied_into_landing_is_published(up, tmp_path: Path) -> None:
    src = write_employee_csv(tmp_path / "copied.csv", rows=800, employees=150, seed=5)
    dest = up["state"] / "objects" / "landing" / "employees" / "copied.csv"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)  # a plain copy, as a person would drop a file
    obj = ObjectVersion(
        "privacy-analytics",
        dest.relative_to(up["state"] / "objects").as_posix(),
        file_digest(src),
        src.stat().st_size,
    )
    url = f"sqlite:///{up['state'] / 'aggregates.db'}"

    def published() -> str | None:
        assert up["proc"].poll() is None
        if not (up["state"] / "aggregates.db").exists():
            return None
        store = AggregateStore(url)
        try:
            return store.find_published(obj)
        finally:
            store.close()

    run_id = wait_until(published, 150, "the copied file to be published", interval=0.5)
    api = f"http://127.0.0.1:{up['env']['PA_PREFECT_PORT']}/api"

    def flow_run_finished() -> dict | None:
        # publication commits before the run's last step (tidy, artifact): wait for its state
        with urllib.request.urlopen(f"{api}/flow_runs/{run_id}", timeout=10) as r:
            run = json.loads(r.read())
        return run if run["state"]["type"] not in ("PENDING", "RUNNING") else None

    flow_run = wait_until(flow_run_finished, 60, "the flow run to finish")
    assert flow_run["state"]["type"] == "COMPLETED"
    assert flow_run["parameters"]["key"] == obj.key
    assert not dest.exists(), "the raw file leaves landing/"
    dash = f"http://127.0.0.1:{up['env']['PA_DASHBOARD_PORT']}/"
    with urllib.request.urlopen(dash, timeout=10) as r:
        assert r.status == 200


def test_every_files_starts_a_release_dataset_run_of_the_deployment(up, tmp_path: Path) -> None:
    """A dataset whose contract says per_file: false, every_files: 2: the second file's
    process-object run starts a release-dataset run of the served deployment, which
    releases over both files (the only spend)."""
    import yaml

    from analytics.store import ReadOnlyStore
    from privacy.errors import PipelineError

    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    data.update(dataset="weekly", release={"per_file": False, "every_files": 2,
                                           "max_rows_per_unit": 16})
    (up["state"] / "contracts" / "weekly.yaml").write_text(yaml.safe_dump(data))
    landing = up["state"] / "objects" / "landing" / "weekly"
    landing.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{up['state'] / 'aggregates.db'}"
    for i in range(2):
        src = write_employee_csv(tmp_path / f"week-{i}.csv", rows=500, employees=100, seed=i)
        shutil.copy(src, landing / src.name)

    def released() -> list | None:
        assert up["proc"].poll() is None
        try:
            sets = ReadOnlyStore(url).release_sets("weekly")
        except PipelineError:  # no store, or no such dataset, until its first run
            return None
        return sets or None

    [only] = wait_until(released, 240, "the dataset release of weekly", interval=1.0)
    assert (only.kind, only.files, only.max_rows_per_unit) == ("dataset", 2, 16)
    ro = ReadOnlyStore(url)
    assert ro.budget("weekly").epsilon_spent == pytest.approx(1.0, abs=1e-6)
    runs = ro.runs(limit=10, dataset="weekly")
    assert sorted(r.status for r in runs) == ["completed", "masked", "masked"]
    release_run = next(r for r in runs if r.status == "completed")
    api = f"http://127.0.0.1:{up['env']['PA_PREFECT_PORT']}/api"
    with urllib.request.urlopen(f"{api}/flow_runs/{release_run.run_id}", timeout=10) as r:
        flow_run = json.loads(r.read())
    assert flow_run["parameters"]["dataset"] == "weekly" and flow_run["deployment_id"]


@pytest.mark.browser
def test_upload_page_file_is_processed_by_the_pipeline(up, driver, tmp_path: Path) -> None:
    """The dashboard's upload page puts a file that the running pipeline then publishes; the
    page shows the run it started, and the dataset page shows the release without a reload."""
    from selenium.webdriver.common.by import By

    from tests.browser.support import screenshot, severe_console_errors, wait_for

    dash = f"http://127.0.0.1:{up['env']['PA_DASHBOARD_PORT']}"
    src = write_employee_csv(tmp_path / "uploaded.csv", rows=600, employees=120, seed=9)
    driver.get(f"{dash}/upload")
    wait_for(lambda: driver.find_element(By.ID, "upload-dataset"), what="the upload form")
    field = driver.find_element(By.ID, "upload-dataset")
    field.clear()
    field.send_keys("employees")
    driver.find_element(By.CSS_SELECTOR, "#upload-file input[type=file]").send_keys(str(src))
    wait_for(
        lambda: "uploaded.csv" in driver.find_element(By.ID, "upload-chosen").text,
        what="the chosen file name",
    )
    driver.find_element(By.ID, "upload-submit").click()
    key = wait_for(lambda: driver.find_element(By.ID, "upload-key").text, what="the object key")
    assert key == "landing/employees/uploaded.csv"
    obj = ObjectVersion("privacy-analytics", key, file_digest(src), src.stat().st_size)
    store = AggregateStore(f"sqlite:///{up['state'] / 'aggregates.db'}")
    try:
        wait_until(lambda: store.find_published(obj), 120, "the uploaded file to be published")
    finally:
        store.close()
    status = wait_for(
        lambda: driver.find_element(By.ID, "upload-run-status"),
        timeout=30,
        what="the run the upload started",
    )
    wait_for(lambda: "completed" in status.text.lower(), timeout=30, what="the completed status")
    screenshot(driver, "upload-processed")
    assert severe_console_errors(driver) == []


def test_prefect_ui_lists_release_dataset_with_its_schedule(up, driver) -> None:
    """The served release-dataset deployment carries the example contract's daily schedule
    (release.schedule), with the dataset as its parameter, and the Prefect UI shows it."""
    from selenium.webdriver.common.by import By

    from tests.browser.support import screenshot, wait_for

    ui = f"http://127.0.0.1:{up['env']['PA_PREFECT_PORT']}"

    def deployment() -> dict | None:
        try:
            with urllib.request.urlopen(
                f"{ui}/api/deployments/name/release-dataset/release-dataset", timeout=5
            ) as r:
                return json.loads(r.read())
        except OSError:
            return None

    dep = wait_until(deployment, 60, "the release-dataset deployment")
    [schedule] = dep["schedules"]
    assert schedule["schedule"]["cron"] == "0 6 * * *"
    assert schedule["schedule"]["timezone"] == "UTC"
    assert schedule["parameters"] == {"dataset": "employees"}
    driver.get(f"{ui}/deployments/deployment/{dep['id']}")
    wait_for(lambda: "release-dataset" in driver.find_element(By.TAG_NAME, "body").text,
             timeout=60, what="the deployment page")
    wait_for(lambda: "06:00" in driver.find_element(By.TAG_NAME, "body").text,
             timeout=30, what="the schedule on the deployment page")
    screenshot(driver, "prefect-release-dataset")


def test_sigterm_stops_every_child(up) -> None:
    proc = up["proc"]
    family = _descendants(proc.pid)
    assert len(family) >= 5, "server, deployments, watcher, receiver and dashboard run"
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in family):
        time.sleep(0.3)
    left = [p for p in family if _alive(p)]
    assert not left, f"children still running after SIGTERM: {left}"
    assert "stopped" in (up["state"] / "up.out").read_text()
