"""The dashboard in real headless Chromium: every page renders with a clean console, a new
release appears without a reload, the upload page puts a file into landing/, group keys
render as text, and CSV exports come out neutralised."""

from __future__ import annotations

import csv
import io
import time
import uuid
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from analytics.store import ObjectVersion, RunRecord
from dashboard.charts import INSIGHT
from dashboard.ids import BUDGET, DATASET, OVERVIEW, PIPELINE, SHELL, UPLOAD
from dashboard.settings import DashboardSettings
from tests.browser.support import (
    HOSTILE_KEYS,
    Stack,
    employee_release_set,
    employees_contract,
    publish,
    screenshot,
    served,
    severe_console_errors,
    wait_for,
)

pytestmark = pytest.mark.browser

PAGES = [
    ("overview", "/", OVERVIEW.content, "employees"),
    ("dataset", "/dataset/employees", DATASET.content, "Comparison: Mean of efficiency"),
    ("budget", "/budget", BUDGET.content, "Budget and ledger"),
    ("pipeline", "/pipeline", PIPELINE.content, "rejected"),
    ("upload", "/upload", UPLOAD.root, "Upload a file"),
]


def open_page(driver, stack: Stack, path: str, content_id: str, expect: str) -> None:
    driver.get(stack.url + path)
    wait_for(lambda: expect.lower() in driver.find_element(By.ID, content_id).text.lower(),
             what=f"'{expect}' in #{content_id} on {path}")


@pytest.mark.parametrize(("name", "path", "content_id", "expect"), PAGES,
                         ids=[p[0] for p in PAGES])
def test_page_renders_without_console_errors(driver, stack: Stack, name: str, path: str,
                                             content_id: str, expect: str) -> None:
    severe_console_errors(driver)  # drain what earlier tests left
    open_page(driver, stack, path, content_id, expect)
    if name == "dataset":
        wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) >= 6,
                 what="the dataset charts")
        wait_for(lambda: "19% higher" in driver.page_source, what="comparison sentences")
        assert "95% CI" in driver.find_element(By.ID, DATASET.kpis).text
        # error bars on the comparison bars, a band around the trend line
        assert driver.find_elements(By.CSS_SELECTOR, ".errorbar")
        assert driver.find_elements(By.CSS_SELECTOR, ".scatterlayer .js-fill")
    time.sleep(1.5)  # a few refresh polls
    screenshot(driver, name)
    assert severe_console_errors(driver) == []


def test_store_unreachable_says_what_to_do(driver, stack: Stack, tmp_path: Path) -> None:
    """A second app pointed at a store that does not exist: a message, no stack trace."""
    settings = DashboardSettings(store_url=f"sqlite:///{tmp_path / 'missing.db'}")
    with served(settings) as base:
        severe_console_errors(driver)
        driver.get(f"{base}/")
        panel = wait_for(lambda: driver.find_element(By.ID, OVERVIEW.error),
                         what="the store-unreachable panel")
        assert "cannot be reached" in panel.text and "What to do" in panel.text
        assert "Traceback" not in driver.page_source
        screenshot(driver, "store-unreachable")
        assert severe_console_errors(driver) == []


def test_new_release_appears_without_reload(driver, stack: Stack) -> None:
    open_page(driver, stack, "/dataset/employees", DATASET.content, "Summary")
    driver.execute_script("window.__noReload = 'still here';")
    publish(stack.store, employees_contract(), employee_release_set(shift=5.0, count=4321.0),
            filename="second.csv")
    wait_for(lambda: "4,321" in driver.find_element(By.ID, DATASET.kpis).text, timeout=20,
             what="the new release's count on the open page")
    assert driver.execute_script("return window.__noReload;") == "still here"


def test_group_key_with_script_renders_as_text(driver, stack: Stack) -> None:
    severe_console_errors(driver)
    open_page(driver, stack, "/dataset/hostile", DATASET.content, "Comparison")
    script_key = HOSTILE_KEYS[0]
    wait_for(lambda: [td for td in driver.find_elements(By.TAG_NAME, "td")
                      if td.text == script_key], what="the key as table text")
    # drawn literally in the chart's axis labels too, and never executed
    wait_for(lambda: any(script_key in t.text
                         for t in driver.find_elements(By.CSS_SELECTOR, ".xtick text")),
             what="the key as an axis label")
    injected = driver.execute_script(
        "return Array.from(document.scripts).filter(s => s.text.includes('pwned')).length")
    assert injected == 0
    screenshot(driver, "dataset-hostile")
    assert severe_console_errors(driver) == []


def test_exported_csv_neutralises_formulas(driver, stack: Stack, download_dir: Path) -> None:
    open_page(driver, stack, "/dataset/hostile", DATASET.content, "Comparison")
    button = wait_for(lambda: driver.find_element(
        By.XPATH, "//div[contains(@class,'card-header')][.//span[starts-with(text(),"
                  "'Comparison: Mean of efficiency')]]//button"), what="the export button")
    for old in download_dir.glob("*.csv"):
        old.unlink()
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                          "arguments[0].click();", button)
    path = wait_for(lambda: next(iter(download_dir.glob("*.csv")), None), timeout=15,
                    what="the downloaded CSV")
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    groups = [r["group"] for r in rows]
    assert "'" + HOSTILE_KEYS[1] in groups
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r"))
                       for cell in (row["group"], row["note"]))
    values = [r for r in rows if r["metric"] != INSIGHT]
    # the comparison's values, then the quality shares of efficiency shown on its card
    assert {r["release"] for r in values} == {"comparison:efficiency:team", "quality"}
    assert {r["column"] for r in values if r["release"] == "quality"} == {"efficiency"}
    assert all(r["lower_95"] and r["upper_95"] and r["noise_impact"] for r in values)
    # its sentences, with the hostile key neutralised where it leads one
    notes = [r["note"] for r in rows if r["metric"] == INSIGHT]
    assert any("19% higher" in n for n in notes)


def test_upload_puts_file_into_landing(driver, stack: Stack, tmp_path: Path) -> None:
    severe_console_errors(driver)
    open_page(driver, stack, "/upload", UPLOAD.root, "Upload a file")
    body = (b"employee_id,name,email,team,project_completion_days,efficiency,finish_date\n"
            b"e1,A,a@x.org,Atlas,12.5,1.1,2024-03-04\n")
    source = tmp_path / "new-projects.csv"
    source.write_bytes(body)
    field = driver.find_element(By.ID, UPLOAD.dataset)
    field.clear()
    field.send_keys("employees")
    driver.find_element(By.CSS_SELECTOR, f"#{UPLOAD.file} input[type=file]").send_keys(
        str(source))
    wait_for(lambda: "new-projects.csv" in driver.find_element(By.ID, UPLOAD.chosen).text,
             what="the chosen file name")
    driver.find_element(By.ID, UPLOAD.submit).click()
    key = wait_for(lambda: driver.find_element(By.ID, UPLOAD.key).text, what="the key")
    assert key == "landing/employees/new-projects.csv"
    landed = stack.landing / "employees" / "new-projects.csv"
    assert landed.read_bytes() == body
    assert [p.name for p in landed.parent.iterdir()] == ["new-projects.csv"]  # no temp left
    assert driver.find_element(By.ID, UPLOAD.waiting)
    # the pipeline records its run for that key: the page shows it without a reload
    obj = ObjectVersion("local", key, "etag-1", len(body))
    run = RunRecord(run_id=str(uuid.uuid4()), dataset="employees", obj=obj, status="rejected",
                    rows_in=1, reason="1 row: fewer rows than k=5; nothing to release")
    stack.store.record_run(run)
    status = wait_for(lambda: driver.find_element(By.ID, UPLOAD.run_status), timeout=20,
                      what="the run it started")
    assert "rejected" in status.text.lower()
    assert "fewer rows than k=5" in driver.find_element(By.ID, UPLOAD.run).text
    screenshot(driver, "upload")
    assert severe_console_errors(driver) == []


def test_navbar_leads_to_each_dataset_without_a_reload(driver, stack: Stack) -> None:
    severe_console_errors(driver)
    open_page(driver, stack, "/", OVERVIEW.content, "employees")
    driver.execute_script("window.__noReload = 'still here';")
    driver.find_element(By.CSS_SELECTOR, f"#{SHELL.datasets} .dropdown-toggle").click()
    item = wait_for(lambda: [a for a in driver.find_elements(By.CSS_SELECTOR,
                                                            f"#{SHELL.datasets} .dropdown-item")
                             if a.text == "hostile"], what="the datasets menu")[0]
    item.click()
    wait_for(lambda: driver.find_element(By.ID, DATASET.title).text == "hostile",
             what="the hostile dataset page")
    assert driver.execute_script("return window.__noReload;") == "still here"
    assert severe_console_errors(driver) == []


def test_the_planner_plans_a_dropped_contract_live(driver, stack: Stack) -> None:
    """An operator drops the example contract on the planner page, sees the predictions,
    doubles ε and sees the summary's row count interval halve."""
    from dashboard.ids import PLANNER
    from tests.browser.support import ROOT

    severe_console_errors(driver)
    driver.get(stack.url + "/planner")
    upload = wait_for(lambda: driver.find_element(By.CSS_SELECTOR, f"#{PLANNER.upload} input"),
                      what="the contract drop zone")
    upload.send_keys(str(ROOT / "contracts" / "employees.yaml"))

    def count_half_width() -> float | None:
        rows = driver.find_elements(By.CSS_SELECTOR, f"#{PLANNER.result} tbody tr")
        for r in rows:
            if r.text.startswith("summary count"):
                return float(r.text.split("±")[1].split()[0].replace(",", ""))
        return None

    before = wait_for(count_half_width, timeout=60, what="the predictions")
    assert "Contract: employees (v1)" in driver.find_element(By.ID, PLANNER.dataset).text
    field = driver.find_element(By.ID, PLANNER.epsilon)
    field.clear()
    field.send_keys("2\n")
    after = wait_for(lambda: (hw := count_half_width()) is not None and hw < 0.75 * before
                     and hw, timeout=60, what="the predictions at twice the ε")
    assert after == pytest.approx(before / 2, rel=0.15)
    screenshot(driver, "planner")
    assert severe_console_errors(driver) == []
