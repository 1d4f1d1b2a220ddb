"""Browser-test fixtures: an aggregate store with published releases (through the real
write API), the dashboard served by a real werkzeug server in a thread, and headless
Chromium (Debian ``chromium`` + ``chromium-driver``) driven by selenium."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.store import AggregateStore
from dashboard.app import create_app
from dashboard.settings import DashboardSettings
from privacy.results import ReleaseSet
from tests.browser.support import (
    CHROMEDRIVER,
    CHROMIUM,
    HOSTILE_KEYS,
    WINDOW,
    Stack,
    employee_release_set,
    employees_contract,
    hostile_contract,
    publish,
    record_rejected_run,
)

# ----------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pa-dash-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(state_dir: Path) -> Iterator[Stack]:
    """One store and one served dashboard for the browser session (tests add data to it)."""
    from werkzeug.serving import make_server

    store_url = f"sqlite:///{state_dir / 'aggregates.db'}"
    store = AggregateStore(store_url)
    publish(store, employees_contract(), employee_release_set())
    record_rejected_run(store)
    hostile = hostile_contract()
    hostile_set = employee_release_set(teams=(*HOSTILE_KEYS, "Cygnus", "Draco"))
    publish(store, hostile, ReleaseSet("hostile", 1, hostile_set.loss, hostile_set.releases))
    landing = state_dir / "objects" / "landing"
    settings = DashboardSettings(store_url=store_url, refresh_seconds=0.5, landing_dir=landing,
                                 prefect_ui_url="http://127.0.0.1:4200")
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(base + "/", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield Stack(base, store, settings, landing)
    server.shutdown()
    thread.join(timeout=10)
    store.close()


# ----------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def download_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pa-dash-downloads-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def driver(download_dir: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for exe in (CHROMIUM, CHROMEDRIVER):
        assert Path(exe).exists(), (
            f"{exe} is missing: install Debian's chromium and chromium-driver "
            "('./run.sh test' does it)"
        )
    profile = tempfile.mkdtemp(prefix="pa-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(download_dir),
        "download.prompt_for_download": False,
    })
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    drv.execute_cdp_cmd("Browser.setDownloadBehavior",
                        {"behavior": "allow", "downloadPath": str(download_dir)})
    drv.set_window_size(*WINDOW)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)
