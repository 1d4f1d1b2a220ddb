"""Browser-test fixtures: an aggregate store with published releases (through the real
write API), the dashboard served by a real werkzeug server in a thread, and headless
Chromium (Debian ``chromium`` + ``chromium-driver``) driven by selenium."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.store import AggregateStore
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
    logged_in,
    publish,
    record_rejected_run,
    served,
)


def _temporary(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- server


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    yield from _temporary("pa-dash-test-")


@pytest.fixture(scope="session")
def stack(state_dir: Path) -> Iterator[Stack]:
    """One store and one served dashboard for the browser session (tests add data to it)."""
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
    with served(settings) as base:
        yield Stack(base, store, settings, landing)
    store.close()


# ----------------------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def download_dir() -> Iterator[Path]:
    yield from _temporary("pa-dash-downloads-")


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
    # generous: on a loaded 2-core machine a Dash page can take long to settle, and a
    # command sent while the previous page still loads waits out this timeout
    drv.set_page_load_timeout(120)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def as_viewer(driver: object) -> Iterator[object]:
    """The browser logged in as vera, the viewer of the tests' users files
    (``served_with_users``)."""
    with logged_in(driver, "vera"):
        yield driver


@pytest.fixture
def as_operator(driver: object) -> Iterator[object]:
    """The browser logged in as otto, the operator of the tests' users files."""
    with logged_in(driver, "otto"):
        yield driver
