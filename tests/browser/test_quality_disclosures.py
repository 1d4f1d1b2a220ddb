"""Acceptance: what shaped the numbers is disclosed next to them.

A payroll file where about 13% of the present salary values lie above the contract's upper
bound of 200 (and 10% of the rows have no salary) goes through the real DP engine
(``analytics.analyses``) and is published through ``AggregateStore``. Then:

- a viewer's dataset page shows, under the mean of salary, the DP share clamped at the
  upper bound ("…% above the upper bound (count as 200)", a share in a plausible range) and
  the missing share, each with a noise-impact badge; the engine's bias warning ("… above the
  contract's upper bound of 200 and count as 200: the average of salary is biased low …")
  leads the page; the summary's CSV export carries the share and the warning; quantiles, if
  any, come with their rough range and never next to a "too few rows" sentence; the reading
  text claims only what the intervals cover;
- ``privacy-analytics releases --dataset payroll --json`` holds the ``clamped_high_share``
  value and the warning, and the text output words the share.

No exact noisy value is asserted: presence, wording and plausible ranges only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from selenium.webdriver.common.by import By

from analytics.analyses import release_analyses
from analytics.store import AggregateStore, ObjectVersion, RunRecord, utcnow
from analytics.vocabulary import Kind, Metric
from dashboard.charts import INSIGHT
from dashboard.ids import DATASET, pattern
from privacy.budget import PrivacyLoss
from privacy.contract import load_contract
from privacy.masking import mask
from tests.browser.support import (
    ROOT,
    screenshot,
    served_with_users,
    severe_console_errors,
    wait_for,
)

pytestmark = pytest.mark.browser

PAYROLL = "payroll"
CONTRACT = Path(__file__).resolve().parent / "contracts" / f"{PAYROLL}.yaml"
ROWS = 20_000
#: of every 100 rows: 10 without a salary, 12 above the upper bound (12/90 = 13.3% of the
#: present values), the rest inside the bounds
MISSING, ABOVE = 10, 12
TRUE_ABOVE_SHARE = ABOVE / (100 - MISSING)
#: far wider than the noise (its 95% half-width is about 3.5 points here)
PLAUSIBLE = (0.05, 0.22)

#: the engine's warning about the clamped share (analytics.insights.quality_insights)
WARNING = re.compile(
    r"About (\d+)% of salary values were above the contract's upper bound of 200 and count "
    r"as 200: the average of salary is biased low"
)
#: the note under the mean of salary
NOTE = re.compile(r"(\d+)% above the upper bound \(count as 200\)")


def payroll_rows() -> pl.DataFrame:
    """Two rows per person; per 100 rows, 10 without a salary and 12 above 200."""
    i, slot = pl.col("i"), pl.col("i") % 100
    return pl.DataFrame({"i": pl.int_range(ROWS, eager=True)}).select(
        person_id=pl.format("P{}", (i // 2).cast(pl.String).str.zfill(6)),
        team=pl.when((i // 2) % 2 == 0).then(pl.lit("Atlas")).otherwise(pl.lit("Borealis")),
        salary=pl.when(slot < MISSING).then(None)
        .when(slot < MISSING + ABOVE).then(250.0 + (i % 7) * 10)
        .otherwise(60.0 + (i * 37) % 120).cast(pl.Float64),
        hours=(20 + i % 30).cast(pl.Float64),
    )


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The file released by the real engine and published as the pipeline would."""
    state = tmp_path_factory.mktemp("quality")
    contract = load_contract(CONTRACT, PAYROLL)
    raw = payroll_rows()
    above = raw.filter(pl.col("salary") > 200).height / raw["salary"].count()
    assert abs(above - TRUE_ABOVE_SHARE) < 0.005  # the design of the data
    masked = mask(raw.lazy(), contract, b"test-pseudonym-key")
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.delta)
    release_set = release_analyses(masked, contract, loss)
    url = f"sqlite:///{state / 'aggregates.db'}"
    obj = ObjectVersion("local", f"landing/{PAYROLL}/salaries.csv", uuid.uuid4().hex, 1)
    run_id = str(uuid.uuid4())
    with AggregateStore(url) as store:
        reservation = store.reserve(contract, release_set.loss, obj=obj, run_id=run_id)
        run = RunRecord(run_id=run_id, dataset=PAYROLL, obj=obj, rows_in=ROWS,
                        started_at=utcnow())
        assert store.publish(reservation, release_set, run)
    yield {"url": url, "state": state}


@pytest.fixture(scope="module")
def viewer_url(published: dict[str, Any]) -> Iterator[str]:
    """The dashboard with a users file: one viewer, vera (``as_viewer``)."""
    with served_with_users(published["url"], published["state"], refresh_seconds=1,
                           viewers=("vera",)) as base:
        yield base


def in_range(percent: str) -> bool:
    return 100 * PLAUSIBLE[0] <= int(percent) <= 100 * PLAUSIBLE[1]


def by_dash_id(driver: Any, dash_id: dict[str, str]) -> Any:
    """The element of a pattern-matching Dash id (rendered as JSON with sorted keys)."""
    text = json.dumps(dash_id, sort_keys=True, separators=(",", ":"))
    return driver.find_element(By.CSS_SELECTOR, f"[id='{text}']")


# ----------------------------------------------------------------------------- the page


def test_the_clamped_share_and_its_warning_are_next_to_the_numbers(
    as_viewer: Any, viewer_url: str, download_dir: Path
) -> None:
    driver = as_viewer
    severe_console_errors(driver)  # drain what earlier tests left
    driver.get(f"{viewer_url}/dataset/{PAYROLL}")
    kpis = wait_for(lambda: driver.find_element(By.ID, DATASET.kpis), timeout=30,
                    what="the KPI cards")
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"),
             what="the charts")
    assert "viewer: DP releases only" in driver.find_element(By.TAG_NAME, "body").text

    # the note under the mean of salary: the clamped and the missing share, with badges
    note = by_dash_id(driver, pattern(DATASET.disclosure, "summary:mean:salary"))
    card = note.find_element(By.XPATH, "./ancestor::div[contains(@class,'card-body')][1]")
    assert "Mean of salary" in card.text and "95% CI" in card.text
    shown = NOTE.search(note.text)
    assert shown, note.text
    assert in_range(shown.group(1)), f"implausible clamped share: {note.text}"
    assert re.search(r"\d+% missing", note.text), note.text
    assert note.find_elements(By.CSS_SELECTOR, ".noise-impact")
    # every KPI carries a noise-impact badge
    badges = kpis.find_elements(By.CSS_SELECTOR, ".kpi-value + .noise-impact")
    assert len(badges) == len(kpis.find_elements(By.CSS_SELECTOR, ".kpi-value")) >= 4
    assert all(re.fullmatch(r"noise: (low|medium|high)", b.text) for b in badges)

    # the warning leads the page
    warnings = driver.find_element(By.ID, DATASET.quality_warnings).text
    said = WARNING.search(warnings)
    assert said and in_range(said.group(1)), warnings
    assert "raise the bound if such values are real" in warnings

    # the Data quality table lists the share with its 95% interval
    table = driver.find_element(By.ID, DATASET.quality_table).text
    assert re.search(r"salary above the upper bound \d+% noise: \w+ 95% CI \d+% to \d+%",
                     table), table

    # quantiles: with a rough range, or not at all; never both and never a "95% CI"
    source = driver.page_source
    quantiles = driver.find_elements(By.CSS_SELECTOR, f"[id*='{DATASET.quantiles}']")
    too_few = "Too few rows to quote quantiles" in source
    assert not (quantiles and too_few)
    for item in (q.text for q in quantiles):
        assert "rough range" in item and "not a 95% interval" in item, item
        assert "95% CI" not in item.replace("not a 95% interval", "")
        assert "noise scale" not in item
    # the reading text claims what the intervals cover, and no more
    reading = driver.find_element(By.ID, DATASET.how_interval).get_attribute("textContent")
    assert "covers the noise added to the value" in reading
    assert "does not cover" in reading
    assert "covers the true value" not in source
    screenshot(driver, "dataset-quality")

    # the summary's CSV export carries the share and the warning
    for old in download_dir.glob("*.csv"):
        old.unlink()
    button = by_dash_id(driver, pattern(DATASET.export, Kind.SUMMARY))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});"
                          "arguments[0].click();", button)
    path = wait_for(lambda: next(iter(download_dir.glob("*.csv")), None), timeout=20,
                    what="the summary's CSV")
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text(encoding="utf-8"))))
    [share] = [r for r in rows if r["metric"] == Metric.CLAMPED_HIGH_SHARE
               and r["column"] == "salary"]
    assert PLAUSIBLE[0] <= float(share["value"]) <= PLAUSIBLE[1]
    assert share["lower_95"] and share["upper_95"] and share["noise_impact"].startswith("noise")
    assert any(WARNING.search(r["note"]) for r in rows if r["metric"] == INSIGHT)
    time.sleep(1.0)  # a few refresh polls
    assert severe_console_errors(driver) == []


# ----------------------------------------------------------------------------- the command


def releases(published: dict[str, Any], *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PA_")}
    env.update({"PA_STORE_URL": published["url"],
                "PA_STATE_DIR": str(published["state"] / "pa")})
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "releases", "--dataset", PAYROLL, *extra],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_releases_command_holds_the_share_and_the_warning(
    published: dict[str, Any]
) -> None:
    data = json.loads(releases(published, "--json"))
    [quality] = [r for r in data["releases"] if r["analysis"] == Kind.QUALITY]
    assert quality["name"] == "quality" and quality["epsilon"] > 0
    [share] = [v for v in quality["values"]
               if v["metric"] == Metric.CLAMPED_HIGH_SHARE and v["column"] == "salary"]
    assert PLAUSIBLE[0] <= share["value"] <= PLAUSIBLE[1]
    assert share["lower"] <= share["value"] <= share["upper"]
    said = [m for m in map(WARNING.search, quality["insights"]) if m]
    assert said and in_range(said[0].group(1))

    text = releases(published)
    assert re.search(r"share: \d+\.\d% of salary values above the upper bound "
                     r"\(count as the bound\) \(95% CI \d+\.\d% to \d+\.\d%\)", text), text
    assert WARNING.search(text)
    assert "not clamping, missing values or truncation" in text
    for line in text.splitlines():
        if line.strip().startswith("quantile_"):
            assert "rough range" in line and "scale" not in line, line
