"""`release-dataset` end to end: files that join a dataset without releases of their own, a
release over all of them started by ``release.every_files``, one over the latest snapshot,
and what `privacy-analytics release-dataset` says (real Prefect server, local store)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from analytics.store import ReadOnlyStore
from flows.cli import main
from flows.demo import write_employee_csv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _contract(tmp_path: Path, **extra: object) -> Path:
    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    data.update(extra)
    path = tmp_path / "employees.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_files_join_the_dataset_and_every_third_starts_a_release(
    pa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contract = _contract(tmp_path, files="append", release={
        "per_file": False, "max_rows_per_unit": 24, "every_files": 3})
    for i in range(3):
        # the same 80 people in every file: their rows accumulate across files
        src = write_employee_csv(tmp_path / f"week-{i}.csv", rows=400, employees=80, seed=i)
        assert main(["process", str(src), "--dataset", "employees",
                     "--contract", str(contract)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("masked: "), out
    ro = ReadOnlyStore(pa.aggregate_store_url)
    [only] = ro.release_sets("employees")
    assert (only.kind, only.files, only.max_rows_per_unit) == ("dataset", 3, 24)
    assert ro.budget("employees").epsilon_spent == pytest.approx(1.0, abs=1e-6)
    runs = ro.runs(limit=10, dataset="employees")
    assert sorted(r.status for r in runs) == ["completed", "masked", "masked", "masked"]
    [release_run] = [r for r in runs if r.status == "completed"]
    assert release_run.key == "datasets/employees/release" and release_run.rows_in == 1200
    values = ro.latest_values("employees", only.ledger_id)
    assert values and all(v.ledger_id == only.ledger_id for v in values)

    # on demand, with nothing new: nothing spent, and the command says so
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 0
    assert "skipped: no new file since the dataset release" in capsys.readouterr().out
    assert ro.budget("employees").epsilon_spent == pytest.approx(1.0, abs=1e-6)
    assert len(ro.release_sets("employees")) == 1


def test_a_snapshot_dataset_releases_its_latest_file(
    pa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """...and, with a public window, only the rows of its last 12 months."""
    contract = _contract(tmp_path, files="snapshot",
                         release={"window": {"column": "finish_date", "months": 12}})
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 0
    assert "has no validated file under its current pseudonym key yet" in capsys.readouterr().out
    for i in range(2):
        src = write_employee_csv(tmp_path / f"census-{i}.csv", rows=300, employees=300, seed=i)
        assert main(["process", str(src), "--dataset", "employees",
                     "--contract", str(contract)]) == 0
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 0
    assert "over 1 file at ε=1" in capsys.readouterr().out
    ro = ReadOnlyStore(pa.aggregate_store_url)
    sets = ro.release_sets("employees")
    assert [(s.kind, s.files, s.files_mode) for s in sets] == [
        ("dataset", 1, "snapshot"), ("file", None, None), ("file", None, None)]
    assert sets[0].since is not None and "rows since" in sets[0].label
    assert ro.default_release_set("employees") == sets[0].ledger_id
    assert ro.budget("employees").epsilon_spent == pytest.approx(3.0, abs=1e-6)


def test_files_of_a_rotated_pseudonym_key_are_never_read_together(
    pa, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After PA_PSEUDONYM_KEY changes, one person has other tokens: a release over files of
    both keys would see them as two people. It reads the current key's files only."""
    contract = _contract(tmp_path, release={"per_file": False})
    for i in range(2):
        if i == 1:
            monkeypatch.setenv("PA_PSEUDONYM_KEY", "another-master-key-of-at-least-32-bytes!")
        src = write_employee_csv(tmp_path / f"f{i}.csv", rows=300, employees=60, seed=i)
        assert main(["process", str(src), "--dataset", "employees",
                     "--contract", str(contract)]) == 0
    capsys.readouterr()
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 0
    assert "over 1 file at" in capsys.readouterr().out
    [only] = ReadOnlyStore(pa.aggregate_store_url).release_sets("employees")
    assert only.files == 1


def test_a_spent_budget_refuses_the_dataset_release_and_says_so(
    pa, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    data["budget"].update(epsilon_cap=1.0, epsilon_per_release=1.0)
    contract = tmp_path / "employees.yaml"
    contract.write_text(yaml.safe_dump(data, sort_keys=False))
    src = write_employee_csv(tmp_path / "only.csv", rows=300, employees=60, seed=4)
    assert main(["process", str(src), "--dataset", "employees", "--contract", str(contract)]) == 0
    capsys.readouterr()
    assert main(["release-dataset", "employees", "--contract", str(contract)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("budget exhausted: ") and "would exceed the budget cap" in err
    ro = ReadOnlyStore(pa.aggregate_store_url)
    assert ro.budget("employees").epsilon_spent == pytest.approx(1.0, abs=1e-6)
    assert [s.kind for s in ro.release_sets("employees")] == ["file"]
    runs = ro.runs(limit=5, dataset="employees")
    assert "completed" in {r.status for r in runs}  # the file's own release, and no other


def test_a_dataset_release_without_a_contract_is_refused(
    pa, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["release-dataset", "payroll"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("refused: ") and "payroll" in err
