"""A dataset under zCDP accounting, end to end: two files processed by the real pipeline
(`privacy-analytics process`, a real Prefect server) and a dataset release, each spending
ρ with Gaussian noise; the budget page in headless Chromium shows ρ spent, the ε it converts
to, the releases remaining and when they run out; the ledger keeps ρ per entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from selenium.webdriver.common.by import By

from analytics.store import ReadOnlyStore
from dashboard.ids import BUDGET
from dashboard.settings import DashboardSettings
from flows.cli import main
from flows.demo import write_employee_csv
from privacy.budget import zcdp_epsilon
from tests.browser.support import ROOT, screenshot, served, severe_console_errors, wait_for
from tests.integration.conftest import pa, prefect_server  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.integration]

RHO = 0.05


@pytest.fixture
def spent(pa: Any, tmp_path: Path) -> Iterator[tuple[str, str]]:
    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    budget = {k: v for k, v in data["budget"].items() if k != "epsilon_per_release"}
    data.update(budget={**budget, "accounting": "zcdp", "rho_per_release": RHO},
                release={"max_rows_per_unit": 24})
    contract = tmp_path / "employees.yaml"
    contract.write_text(yaml.safe_dump(data, sort_keys=False))
    frame = write_employee_csv(tmp_path / "all.csv", rows=1000, employees=120, seed=9)
    lines = frame.read_text().splitlines()
    for i in range(2):
        part = tmp_path / f"week-{i + 1}.csv"
        part.write_text("\n".join([lines[0], *lines[1 + i::2]]) + "\n")
        assert main(["process", str(part), "--dataset", "employees",
                     "--contract", str(contract)]) == 0
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 0
    with served(DashboardSettings(store_url=pa.aggregate_store_url, refresh_seconds=1)) as base:
        yield base, pa.aggregate_store_url


def test_the_budget_page_shows_rho_and_its_conversion(driver: Any, spent: tuple[str, str]) -> None:
    base, store_url = spent
    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert b.accounting == "zcdp" and b.rho_spent == pytest.approx(3 * RHO)
    assert b.epsilon_spent == pytest.approx(zcdp_epsilon(3 * RHO, b.delta_cap - b.delta_spent))
    assert b.epsilon_spent <= b.epsilon_cap and b.releases_remaining
    entries = ro.ledger("employees")
    assert len(entries) == 3 and all(e.rho == pytest.approx(RHO) for e in entries)
    mechanisms = {r.mechanism for r in ro.releases("employees")}
    assert mechanisms and not any("laplace" in m for m in mechanisms), mechanisms

    severe_console_errors(driver)
    driver.get(base + "/budget")
    content = wait_for(lambda: driver.find_element(By.ID, BUDGET.content), what="the budget")
    wait_for(lambda: "ρ (zCDP)" in content.text, what="the ρ row")
    text = content.text
    assert "zero-concentrated DP" in text and "converted from ρ" in driver.page_source
    assert f"{b.releases_remaining:,} at the current size" in text
    assert "ε alone" in text  # the ledger's columns under zCDP
    assert not severe_console_errors(driver)
    screenshot(driver, "budget-zcdp", also_docs=True)
