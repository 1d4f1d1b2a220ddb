"""`privacy-analytics releases|budget|runs` against a real SQLite aggregate store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.store import AggregateStore
from flows.cli import main
from privacy.budget import PrivacyLoss
from tests.unit.analytics.store_helpers import (
    Clock,
    make_contract,
    make_obj,
    make_release_set,
    make_run,
    values_per_set,
)


@pytest.fixture
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AggregateStore:
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    monkeypatch.setenv("PA_STORE_URL", url)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path / "state"))
    clock = Clock()
    store = AggregateStore(url, clock=clock)
    for name, eps in (("a.csv", 1.0), ("b.csv", 0.5)):
        obj = make_obj(name=name, etag=f"etag-{name}")
        res = store.reserve(make_contract(cap=3.0), PrivacyLoss(eps, 1e-7), obj=obj,
                            run_id=f"run-{name}")
        assert store.publish(res, make_release_set(loss=PrivacyLoss(eps, 1e-7)),
                             make_run(f"run-{name}", obj, started_at=clock.now))
        clock.advance(minutes=1)
    bad = make_run("run-bad", make_obj(name="bad.csv"), started_at=clock.now)
    bad.status, bad.reason = "rejected", "3 rows have 9 fields, the header has 7"
    store.record_run(bad)
    # a run in progress right now (the CLI reads with the real clock)
    AggregateStore(url).reserve(make_contract("sales", cap=1.0), PrivacyLoss(1.0, 1e-7),
                                obj=make_obj("sales", name="s.csv"), run_id="run-s")
    return store


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_releases_text(store_env: AggregateStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "releases", "--dataset", "employees")
    assert code == 0
    assert "dataset employees: 4 release(s)" in out
    assert "summary  (summary, laplace, ε=0.25 δ=5e-08)" in out
    assert "(95% CI 96 to 104)" in out and "scale 2" in out
    assert "efficiency [team=Atlas]" in out
    assert "from pa-test/landing/employees/b.csv (etag etag-b.csv), run run-b.csv" in out
    assert "insight: Borealis's efficiency is 20% higher" in out
    code, out, _ = run_cli(capsys, "releases", "--dataset", "employees", "--limit", "1")
    assert out.count("#") == 1


def test_releases_json(store_env: AggregateStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "releases", "--dataset", "employees", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["dataset"] == "employees" and len(data["releases"]) == 4
    newest = data["releases"][0]
    assert newest["run_id"] == "run-b.csv" and newest["epsilon"] == pytest.approx(0.25)
    assert sum(len(r["values"]) for r in data["releases"]) == 2 * values_per_set()
    value = newest["values"][0]
    assert set(value) == {"metric", "column", "group", "value", "lower", "upper", "scale"}
    assert value["group"] == {"team": "Atlas"}
    assert newest["created_at"].startswith("2024-05-17T12:01")


def test_releases_of_a_dataset_without_releases(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "releases", "--dataset", "sales")
    assert code == 0 and "no releases yet" in out


def test_budget_text(store_env: AggregateStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "budget")
    assert code == 0
    assert "dataset employees (lifetime)" in out and "dataset sales (lifetime)" in out
    emp = out.split("dataset sales")[0]
    eps_row = next(line.split() for line in emp.splitlines() if line.strip().startswith("ε "))
    assert eps_row == ["ε", "3", "1.5", "0", "1.5"]  # cap, spent, reserved, remaining
    assert emp.count("committed") == 2
    sales = out.split("dataset sales")[1]
    assert "EXHAUSTED" in sales and "reserved" in sales


def test_budget_json_for_one_dataset(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "budget", "--dataset", "employees", "--json")
    assert code == 0
    [b] = json.loads(out)["datasets"]
    assert b["dataset"] == "employees"
    assert (b["epsilon_cap"], b["epsilon_spent"], b["epsilon_remaining"]) == (3.0, 1.5, 1.5)
    assert b["policy"] == "lifetime" and b["exhausted"] is False
    assert [e["run_id"] for e in b["ledger"]] == ["run-b.csv", "run-a.csv"]
    assert {e["state"] for e in b["ledger"]} == {"committed"}


def test_runs_text_and_json(store_env: AggregateStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "runs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["started", "status", "dataset"]
    assert "rejected" in lines[1] and "3 rows have 9 fields, the header has 7" in lines[1]
    assert "completed" in lines[2] and "100/98/2" in lines[2]
    code, out, _ = run_cli(capsys, "runs", "--json", "--limit", "2", "--dataset", "employees")
    runs = json.loads(out)["runs"]
    assert [r["run_id"] for r in runs] == ["run-bad", "run-b.csv"]
    assert runs[1]["status"] == "completed" and runs[1]["epsilon_spent"] == 0.5
    code, out, _ = run_cli(capsys, "runs", "--dataset", "nothing")
    assert code == 0 and "no runs yet for dataset nothing" in out


def test_unknown_dataset_is_an_error_naming_the_known_ones(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "budget", "--dataset", "employes")
    assert code == 1 and out == ""
    assert err.startswith("error: no dataset 'employes'") and "employees, sales" in err


def test_no_store_yet_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PA_STORE_URL", f"sqlite:///{tmp_path / 'missing.db'}")
    for argv in (["runs"], ["budget"], ["releases", "--dataset", "x"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 1 and out == ""
        assert "no data has been published yet" in err and "privacy-analytics up" in err
        assert err.count("\n") == 1  # one line


def test_default_store_is_the_state_dir_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PA_STORE_URL", raising=False)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path))
    AggregateStore(f"sqlite:///{tmp_path / 'aggregates.db'}").close()
    code, out, _ = run_cli(capsys, "budget", "--json")
    assert code == 0 and json.loads(out) == {"datasets": []}
    code, out, _ = run_cli(capsys, "budget")
    assert "no datasets yet" in out


def test_limit_must_be_positive(store_env: AggregateStore) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["runs", "--limit", "0"])
    assert exc.value.code == 2
