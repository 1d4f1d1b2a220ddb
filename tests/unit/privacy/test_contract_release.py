"""The contract's dataset-release settings: how files relate, the dataset release's own
per-person bound, its schedule and ε, and what a dataset release sees of the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from privacy.contract import Contract

ROOT = Path(__file__).resolve().parents[3]


def _contract(**extra: Any) -> Contract:
    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    data.update(extra)
    return Contract.model_validate(data)


def test_defaults_release_each_file_and_append() -> None:
    c = _contract(release={})
    assert c.files == "append" and c.release.per_file and not c.release.scheduled
    assert c.dataset_rows_per_unit == c.max_rows_per_unit
    assert c.dataset_release_epsilon == c.budget.epsilon_per_release


def test_a_dataset_release_sees_its_own_bound_rows_and_epsilon() -> None:
    c = _contract(release={"max_rows_per_unit": 48, "epsilon": 2.0, "per_file": False})
    view = c.for_dataset_release(12)
    assert view.max_rows_per_unit == 48
    assert view.max_rows_per_file == 12 * c.max_rows_per_file
    assert view.budget.epsilon_per_release == 2.0 and view.budget.epsilon_cap == c.budget.epsilon_cap
    assert view.analyses == c.analyses and view.columns == c.columns
    # its calibrations are its own: another fingerprint
    assert view.fingerprint() != c.fingerprint()
    # OpenDP's max_length is a 32-bit count
    assert c.for_dataset_release(10**6).max_rows_per_file == 2**32 - 1


@pytest.mark.parametrize(("extra", "message"), [
    ({"release": {"schedule": "every monday"}}, "cron expression of five fields"),
    ({"release": {"schedule": "0 6 * *"}}, "cron expression of five fields"),
    ({"release": {"epsilon": 1000}}, "release.epsilon cannot exceed budget.epsilon_cap"),
    ({"release": {"every_files": 0}}, "every_files"),
    ({"release": {"max_rows_per_unit": 0}}, "max_rows_per_unit"),
    ({"files": "stream"}, "files"),
    ({"release": {"per_file": False, "bogus": 1}}, "bogus"),
])
def test_bad_release_settings_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _contract(**extra)


def test_rows_are_people_has_no_dataset_bound() -> None:
    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    data.pop("privacy_unit")
    data.pop("max_rows_per_unit")
    data["rows_are_people"] = True
    data["release"] = {}
    data["columns"]["employee_id"]["action"] = "pseudonymize"
    assert Contract.model_validate(data).dataset_rows_per_unit == 1
    with pytest.raises(ValidationError, match="one row per person in the whole dataset"):
        Contract.model_validate({**data, "release": {"max_rows_per_unit": 4}})


@pytest.mark.parametrize("cron", ["0 6 * * 1", "*/15 * * * *", "0 0 1 1,4,7,10 *", "@daily"])
def test_schedules_take_cron(cron: str) -> None:
    assert _contract(release={"schedule": cron}).release.scheduled


def test_a_window_keeps_the_last_months_of_a_time_column() -> None:
    from datetime import date

    c = _contract(release={"window": {"column": "finish_date", "months": 12}})
    assert c.release.window is not None
    assert c.release.window.since(date(2026, 12, 1)) == date(2025, 12, 1)
    assert c.release.window.since(date(2026, 3, 31)) == date(2025, 3, 1)
    with pytest.raises(ValidationError, match=r"release\.window: 'team' must have role time"):
        _contract(release={"window": {"column": "team", "months": 12}})
    with pytest.raises(ValidationError, match="months"):
        _contract(release={"window": {"column": "finish_date", "months": 0}})


def test_the_window_filter_is_row_wise_with_a_public_cutoff(tmp_path: Path) -> None:
    from datetime import date

    import polars as pl

    from flows.release_dataset import _union

    paths = []
    for i, days in enumerate(([date(2025, 1, 5), date(2025, 12, 1)], [None, date(2026, 6, 30)])):
        p = tmp_path / f"f{i}.parquet"
        pl.DataFrame({"who": ["a", "b"], "finish_date": days}).write_parquet(p)
        paths.append(p)
    kept = _union(paths, ("finish_date", date(2025, 12, 1))).collect()
    assert kept["finish_date"].to_list() == [date(2025, 12, 1), date(2026, 6, 30)]
    assert _union(paths).collect().height == 4
