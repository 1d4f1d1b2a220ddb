"""Acceptance: viewers see DP releases only, operators also see the exact counts.

A file of exactly 9,973 rows goes through the real pipeline (``privacy-analytics process``
against a real Prefect server); exactly 3 of its rows sit in a quasi-identifier class
smaller than k, so k-anonymity suppresses exactly 3 rows. Then:

- logged in as a viewer, no page a viewer can open (overview, dataset, budget), no CSV a
  viewer can download there, and neither ``privacy-analytics releases --dataset staff`` nor
  its ``--json`` shows the exact row count (``9,973`` / ``9973``) or anything about
  suppression; the runs page answers "not available to your role";
- logged in as an operator, the runs page shows 9,973 rows in and 3 suppressed.

The contract bounds each person to 2 rows (``max_rows_per_unit: 2``) while every person has
4 rows in the file, so the DP row count (about 2 × 2,494 people) lies thousands of noise
scales away from 9,973: a ``9,973`` on a viewer page can only be the exact count leaking,
never an unlucky draw of the noise.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from analytics.store import AggregateStore, ReadOnlyStore
from dashboard.ids import BUDGET, DATASET, OPERATOR_PAGES, OVERVIEW, PIPELINE
from tests.browser.support import (
    ROOT,
    screenshot,
    served_with_users,
    severe_console_errors,
    wait_for,
)
from tests.integration.conftest import prefect_server  # noqa: F401 - a session fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STAFF = "staff"
#: its k is 5: the 3 rows of site 'Outpost' form a class smaller than k
CONTRACT = Path(__file__).resolve().parent / "contracts" / f"{STAFF}.yaml"
ROWS = 9_973
SUPPRESSED = 3
#: the exact row count, as a number of its own (not inside a hex etag, a run id or 0.9973)
EXACT_ROWS = re.compile(r"(?<![\w.])9,?973(?!\w)")
#: any word about suppressed rows ("suppress_callback_exceptions" of Dash's config is not)
SUPPRESSION = re.compile(r"suppress(ed|ion|ing)", re.IGNORECASE)


def write_rows(path: Path) -> Path:
    """9,973 rows, 4 per person; sites North and South hold 4,985 rows each, and Outpost the
    last 3 rows: the only class smaller than k."""
    lines = ["person_id,site,team,hours"]
    for i in range(ROWS):
        site = "Outpost" if i >= ROWS - SUPPRESSED else ("North" if i % 2 else "South")
        team = "Atlas" if (i // 4) % 2 else "Borealis"
        lines.append(f"P{i // 4:05d},{site},{team},{(i * 7) % 50 + 5}.5")
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory,
              prefect_server: str) -> Iterator[dict[str, Any]]:
    """The file processed by `privacy-analytics process`, through the real pipeline."""
    state = tmp_path_factory.mktemp("two-audiences")
    contracts = state / "contracts"
    contracts.mkdir()
    contract = contracts / f"{STAFF}.yaml"
    shutil.copy(CONTRACT, contract)
    src = write_rows(state / "hours-2025.csv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PA_")}
    env.update({
        "PA_STATE_DIR": str(state / "pa"),
        "PA_CONTRACTS_DIR": str(contracts),
        "PA_PSEUDONYM_KEY": "test-pseudonym-key-" + uuid.uuid4().hex,
    })
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "process", str(src), "--dataset", STAFF,
         "--contract", str(contract)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=400, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    url = f"sqlite:///{state / 'pa' / 'aggregates.db'}"
    with ReadOnlyStore(url) as store:
        [run] = store.runs(dataset=STAFF)
        assert run.status == "completed", run.reason
        # the design of the data: these are the exact operator counts
        assert (run.rows_in, run.rows_suppressed, run.rows_out) == (ROWS, SUPPRESSED,
                                                                     ROWS - SUPPRESSED)
    # an operator raises the cap (`privacy-analytics budget set ... --force`): a weakening
    # change of the guarantee, which the budget page must show to viewers
    with AggregateStore(url) as writer:
        writer.set_terms(STAFF, reason="second survey wave approved", actor="otto",
                         force=True, epsilon_cap=12.0)
    yield {"url": url, "env": env, "state": state}


@pytest.fixture(scope="module")
def dashboard(processed: dict[str, Any]) -> Iterator[str]:
    """The dashboard on loopback with a users file: a viewer and an operator (``as_viewer``,
    ``as_operator``)."""
    with served_with_users(processed["url"], processed["state"], refresh_seconds=0.5,
                           viewers=("vera",), operators={"otto": [STAFF]}) as base:
        yield base


def leaks(text: str) -> list[str]:
    """The exact row count or any mention of suppression in ``text``."""
    return [m.group(0) for m in EXACT_ROWS.finditer(text)] + [
        text[max(m.start() - 40, 0):m.end() + 40] for m in SUPPRESSION.finditer(text)]


def page_text(driver: Any) -> str:
    return driver.find_element(By.TAG_NAME, "body").text + "\n" + driver.page_source


# ----------------------------------------------------------------------------- viewer


VIEWER_PAGES = [
    (OVERVIEW, "/", "People (DP)"),
    (DATASET, f"/dataset/{STAFF}", "Comparison"),
    (BUDGET, "/budget", "Changes to the guarantee"),
]


def test_viewer_pages_and_exports_show_no_exact_counts(
    as_viewer: Any, dashboard: str, download_dir: Path
) -> None:
    driver = as_viewer
    severe_console_errors(driver)  # drain what earlier tests left
    for old in download_dir.iterdir():
        old.unlink()
    downloads = 0
    for page, path, expect in VIEWER_PAGES:
        driver.get(dashboard + path)
        wait_for(lambda c=page.content, e=expect: e in driver.find_element(By.ID, c).text,
                 timeout=30, what=f"'{expect}' on {path}")
        if page is DATASET:
            wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"),
                     what="the charts")
        if page is BUDGET:  # the raised cap, shown as a weakening of the guarantee
            weakened = driver.find_element(By.ID, BUDGET.of_dataset(STAFF).weakened).text
            assert "ε cap 10 → 12" in weakened and "otto" in weakened
            assert "second survey wave approved" in weakened
            row = driver.find_element(By.CSS_SELECTOR, "tr.table-danger")
            assert "weakens the guarantee" in row.text and "forced" in row.text
        time.sleep(1.0)  # a few refresh polls
        text = page_text(driver)
        assert "viewer: DP releases only" in text
        assert not leaks(text), f"{path} shows exact operator counts: {leaks(text)}"
        footer = driver.find_element(By.ID, page.footer).text
        assert "differentially private" in footer and "exact" not in footer.replace(
            "No exact count", "")
        nav = {(a.get_attribute("href") or "").removeprefix(dashboard)
               for a in driver.find_elements(By.CSS_SELECTOR, ".navbar a.nav-link")}
        assert "/pipeline" not in nav and "/upload" not in nav
        screenshot(driver, f"viewer-{page.name}")
        # every "Download CSV" a viewer has on this page
        for button in driver.find_elements(By.XPATH, "//button[text()='Download CSV']"):
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                                  "arguments[0].click();", button)
            downloads += 1
            wait_for(lambda n=downloads: len([p for p in download_dir.iterdir()
                                              if p.suffix == ".csv"]) >= n,
                     timeout=20, what=f"download {downloads} from {path}")
        assert severe_console_errors(driver) == [], path
    files = sorted(p for p in download_dir.iterdir() if p.suffix == ".csv")
    assert len(files) == downloads >= 4, "exports of the dataset and budget pages"
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert not leaks(text), f"{f.name} carries exact counts: {leaks(text)}"
        assert "object_key" not in next(csv.reader([text.splitlines()[0]]))


def test_a_viewer_opening_the_runs_page_gets_no_data(as_viewer: Any, dashboard: str) -> None:
    driver = as_viewer
    severe_console_errors(driver)
    for page in OPERATOR_PAGES:
        driver.get(f"{dashboard}/{page.name}")
        refusal = wait_for(lambda p=page: driver.find_element(By.ID, p.forbidden),
                           timeout=20, what=f"the refusal on /{page.name}")
        assert "Not available to your role" in refusal.text
        time.sleep(1.0)
        assert not leaks(page_text(driver))
        assert not driver.find_elements(By.ID, page.id("content"))
        screenshot(driver, f"viewer-{page.name}-refused")
    assert severe_console_errors(driver) == []


def test_the_releases_command_shows_no_exact_counts(processed: dict[str, Any]) -> None:
    for extra in ([], ["--json"]):
        proc = subprocess.run(
            [sys.executable, "-m", "flows.cli", "releases", "--dataset", STAFF, *extra],
            env=processed["env"], cwd=ROOT, capture_output=True, text=True, timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = proc.stdout + proc.stderr
        assert "summary" in out and "comparison:hours:team" in out
        assert not leaks(out), f"releases {extra} shows exact counts: {leaks(out)}"


# ----------------------------------------------------------------------------- operator


def test_an_operator_sees_the_exact_counts_on_the_runs_page(as_operator: Any,
                                                            dashboard: str) -> None:
    driver = as_operator
    severe_console_errors(driver)
    driver.get(f"{dashboard}/pipeline")
    runs = wait_for(lambda: driver.find_element(By.ID, PIPELINE.runs), timeout=30,
                    what="the runs table")
    wait_for(lambda: "9,973 in" in runs.text, what="the exact rows in")
    assert f"{SUPPRESSED} suppressed" in runs.text and "9,970 out" in runs.text
    banner = driver.find_element(By.ID, PIPELINE.operator_banner).text
    assert "exact" in banner and "Operator information" in banner
    footer = driver.find_element(By.ID, PIPELINE.footer).text
    assert "exact" in footer and "Every figure on this page is a differentially" not in footer
    nav = {(a.get_attribute("href") or "").removeprefix(dashboard)
           for a in driver.find_elements(By.CSS_SELECTOR, ".navbar a.nav-link")}
    assert {"/pipeline", "/upload"} <= nav
    screenshot(driver, "operator-pipeline")
    assert severe_console_errors(driver) == []
