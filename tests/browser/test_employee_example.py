"""The employee example end to end on the read side: synthetic employee rows are masked and
released by the real DP engine (analytics.analyses), published through AggregateStore, and
the dataset page renders that output in headless Chromium with a clean console."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By

from analytics.analyses import release_analyses
from analytics.store import AggregateStore, ObjectVersion, RunRecord, utcnow
from dashboard.ids import DATASET
from dashboard.settings import DashboardSettings
from flows.demo import employee_frame
from privacy.budget import PrivacyLoss
from privacy.masking import mask
from tests.browser.support import (
    employees_contract,
    screenshot,
    served,
    severe_console_errors,
    wait_for,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def example_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    contract = employees_contract()
    raw = employee_frame(employees=3000, rows=20_000).lazy()
    masked = mask(raw, contract, b"test-pseudonym-key")
    loss = PrivacyLoss(contract.budget.epsilon_per_release, contract.budget.delta)
    release_set = release_analyses(masked, contract, loss)
    url = f"sqlite:///{tmp_path_factory.mktemp('example') / 'aggregates.db'}"
    run_id = str(uuid.uuid4())
    obj = ObjectVersion("local", "landing/employees/projects.csv", uuid.uuid4().hex, 1)
    with AggregateStore(url) as store:
        reservation = store.reserve(contract, release_set.loss, obj=obj, run_id=run_id)
        run = RunRecord(run_id=run_id, dataset="employees", obj=obj, rows_in=20_000,
                        started_at=utcnow())
        assert store.publish(reservation, release_set, run)
    with served(DashboardSettings(store_url=url, refresh_seconds=1)) as base:
        yield base


def test_real_engine_output_renders(driver, example_url: str) -> None:
    severe_console_errors(driver)
    driver.get(example_url + "/dataset/employees")
    kpis = wait_for(lambda: driver.find_element(By.ID, DATASET.kpis), what="the KPI cards")
    assert "People" in kpis.text and "95% CI" in kpis.text
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot"),
             what="the charts")
    page = driver.find_element(By.ID, DATASET.content).text
    assert "Comparison: Mean of efficiency" in page
    screenshot(driver, "dataset", also_docs=True)  # docs show the real engine's output
    assert severe_console_errors(driver) == []
