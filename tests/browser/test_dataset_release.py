"""A dataset that grows file by file, end to end: three files dropped into an append dataset
(`privacy-analytics process`, a real Prefect server), `privacy-analytics release-dataset`
over all of them, and the dataset page in headless Chromium: the dataset release shown by
default, the history panel with the files' earlier releases, and the selector."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from selenium.webdriver.common.by import By

from dashboard.ids import DATASET
from dashboard.settings import DashboardSettings
from flows.cli import main
from flows.demo import write_employee_csv
from tests.browser.support import ROOT, screenshot, served, severe_console_errors, wait_for
from tests.integration.conftest import pa, prefect_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture
def grown(pa: Any, tmp_path: Path) -> Iterator[str]:
    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    data.update(files="append", release={"max_rows_per_unit": 24})
    contract = tmp_path / "employees.yaml"
    contract.write_text(yaml.safe_dump(data, sort_keys=False))
    frame = write_employee_csv(tmp_path / "all.csv", rows=1500, employees=150, seed=5)
    lines = frame.read_text().splitlines()
    for i in range(3):  # the same people in each file: every third row
        part = tmp_path / f"week-{i + 1}.csv"
        part.write_text("\n".join([lines[0], *lines[1 + i::3]]) + "\n")
        assert main(["process", str(part), "--dataset", "employees",
                     "--contract", str(contract)]) == 0
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 0
    with served(DashboardSettings(store_url=pa.aggregate_store_url, refresh_seconds=1)) as base:
        yield base


def _choose(driver: Any, label: str) -> None:
    """Pick the release set ``label`` starts with in the selector (at the top of the page)."""
    driver.execute_script("window.scrollTo(0, 0);")
    wait_for(lambda: driver.find_element(By.ID, DATASET.release_set).is_displayed(),
             what="the release selector")
    driver.find_element(By.ID, DATASET.release_set).click()
    option = wait_for(lambda: [o for o in driver.find_elements(
        By.CSS_SELECTOR, ".dash-dropdown-option") if o.text.startswith(label)],
        what="the selector's options")
    option[0].click()


def test_the_dataset_release_and_its_history(driver: Any, grown: str) -> None:
    severe_console_errors(driver)
    driver.get(grown + "/dataset/employees")
    shown = wait_for(lambda: driver.find_element(By.ID, DATASET.shown), what="the header")
    assert "Showing the dataset release (3 files)" in shown.text

    # the selector: an earlier file's own release, then the dataset release again
    _choose(driver, "file week-1.csv")
    wait_for(lambda: "Showing the file week-1.csv" in driver.find_element(By.ID, DATASET.shown).text,
             what="the chosen release")
    _choose(driver, "dataset release (3 files)")
    wait_for(lambda: "Showing the dataset release (3 files)" in driver.find_element(
        By.ID, DATASET.shown).text, what="the dataset release again")

    history = wait_for(lambda: driver.find_element(By.ID, DATASET.history),
                       what="the history panel")
    table = history.find_element(By.ID, DATASET.history_table)
    rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 4  # the dataset release and the three files' own releases
    assert rows[0].text.startswith("dataset release (3 files)")
    assert [r.text.split(",")[0] for r in rows[1:]] == [
        "file week-3.csv", "file week-2.csv", "file week-1.csv"]
    assert "95% CI" in rows[0].text
    wait_for(lambda: history.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"),
             what="the history charts")
    screenshot(driver, "dataset-history")
    assert severe_console_errors(driver) == []
