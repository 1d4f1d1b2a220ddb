"""The dataset page's release selector and history panel, rendered from a real store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from analytics.store import AggregateStore
from dashboard.history import LATEST_EACH, chosen_set, history_sets
from dashboard.ids import DATASET
from dashboard.pages import dataset
from dashboard.services import Services
from dashboard.settings import DashboardSettings
from tests.browser.support import (
    employee_release_set,
    employees_contract,
    publish,
    publish_dataset_release,
)
from tests.unit.dashboard.test_app import ids, texts, walk


@pytest.fixture
def grown(tmp_path: Path) -> Iterator[Services]:
    """Two files, a dataset release over them, a third file, a dataset release over all
    three: rows 1000, 1100 (files), 2100 (dataset), 1200 (file), 3300 (dataset)."""
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    contract = employees_contract()
    with AggregateStore(url) as store:
        publish(store, contract, employee_release_set(count=1000.0), "week-1.csv")
        publish(store, contract, employee_release_set(count=1100.0), "week-2.csv")
        publish_dataset_release(store, contract, employee_release_set(count=2100.0))
        publish(store, contract, employee_release_set(count=1200.0), "week-3.csv")
        publish_dataset_release(store, contract, employee_release_set(count=3300.0))
    s = Services.from_settings(DashboardSettings(store_url=url, state_dir=tmp_path / "ui"))
    yield s
    s.close()


def _kpi_rows(page: object) -> str:
    [kpis] = [c for c in walk(page) if getattr(c, "id", None) == DATASET.kpis]
    return texts(kpis)


def test_the_latest_dataset_release_is_shown_first_with_a_selector(grown: Services) -> None:
    page = dataset.render(grown, "employees")
    found = ids(page)
    assert {DATASET.release_set, DATASET.history, DATASET.history_table} <= found
    assert "3,300" in _kpi_rows(page) and "1,200" not in _kpi_rows(page)
    assert "Showing the dataset release (3 files)" in texts(page)
    [dropdown] = [c for c in walk(page) if getattr(c, "id", None) == DATASET.release_set]
    labels = [o["label"] for o in dropdown.options]
    assert len(labels) == 5 and labels[0].startswith("dataset release (3 files)")
    assert labels[1].startswith("file week-3.csv") and dropdown.value == dropdown.options[0]["value"]


def test_an_earlier_release_or_a_file_can_be_chosen(grown: Services) -> None:
    sets = grown.store().release_sets("employees")
    earlier = next(s for s in sets if s.kind == "dataset" and s.files == 2)
    page = dataset.render(grown, "employees", chosen=str(earlier.ledger_id))
    assert "2,100" in _kpi_rows(page) and "Showing the dataset release (2 files)" in texts(page)
    week3 = next(s for s in sets if s.key.endswith("week-3.csv"))
    assert "1,200" in _kpi_rows(dataset.render(grown, "employees", chosen=str(week3.ledger_id)))
    # a choice that no longer exists falls back to the default
    assert chosen_set(sets, sets[0].ledger_id, "999999") == sets[0].ledger_id
    assert chosen_set(sets, sets[0].ledger_id, LATEST_EACH) is None


def test_the_history_follows_every_release(grown: Services) -> None:
    page = dataset.render(grown, "employees")
    [table] = [c for c in walk(page) if getattr(c, "id", None) == DATASET.history_table]
    text = texts(table)
    # one row per release set, newest first, each value with its 95% interval
    positions = [text.index(n) for n in ("3,300", "1,200", "2,100", "1,100", "1,000")]
    assert positions == sorted(positions) and "95% CI" in text
    followed = history_sets(grown.store().release_sets("employees"))
    assert [s.files for s in followed] == [None, None, 2, None, 3]
    graphs = [c for c in walk(page) if isinstance(getattr(c, "id", None), dict)
              and str(c.id.get("name", "")).startswith("history:")]
    assert {g.id["name"] for g in graphs} >= {"history:Rows", "history:People"}
    rows = next(g for g in graphs if g.id["name"] == "history:Rows").figure
    series = {t.name: list(t.y) for t in rows.data}
    assert series == {"dataset releases (all files so far)": [2100.0, 3300.0],
                      "single files": [1000.0, 1100.0, 1200.0]}


def test_the_overview_shows_the_latest_dataset_release_too(grown: Services) -> None:
    from dashboard.ids import OVERVIEW
    from dashboard.pages import overview

    with AggregateStore(grown.settings.aggregate_store_url) as store:  # a newer file
        publish(store, employees_contract(), employee_release_set(count=1300.0), "week-4.csv")
    page = overview.render(grown)
    [rows] = [c for c in walk(page) if getattr(c, "id", None) == {
        "type": OVERVIEW.count, "name": "employees:rows"}]
    assert "3,300" in texts(rows) and "1,300" not in texts(rows)  # not the newest file's
