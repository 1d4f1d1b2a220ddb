"""`privacy-analytics releases|budget|runs` and `budget set` against a real SQLite aggregate
store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analytics.store import AggregateStore
from flows.cli import main
from privacy.budget import PrivacyLoss
from privacy.errors import BudgetTermsChanged
from tests.unit.analytics.store.helpers import (
    Clock,
    make_contract,
    make_obj,
    make_run,
    publish_file,
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
        publish_file(store, make_contract(cap=3.0), name, PrivacyLoss(eps, 1e-7),
                     started_at=clock.now)
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
    assert lines[0] == "exact counts: operator information, not differentially private"
    assert lines[1].split()[:3] == ["started", "status", "dataset"]
    assert "values nulled" in lines[1] and lines[1].rstrip().endswith("notes")
    assert "rejected" in lines[2] and "3 rows have 9 fields, the header has 7" in lines[2]
    assert "completed" in lines[3] and "100/98/2" in lines[3]
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


def test_a_new_install_lists_nothing_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PA_STORE_URL", raising=False)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path / "state"))  # a new state folder
    answers = {
        ("budget",): {"datasets": []},
        ("budget", "--dataset", "employees"): {"datasets": []},
        ("releases", "--dataset", "x"): {"dataset": "x", "releases": []},
        ("runs",): {"runs": []},
    }
    for argv, empty in answers.items():
        code, out, err = run_cli(capsys, *argv, "--json")
        assert (code, err) == (0, ""), argv
        assert json.loads(out) == empty
        code, out, err = run_cli(capsys, *argv)
        assert (code, err) == (0, ""), argv
        assert out.startswith("nothing published yet") and "privacy-analytics up" in out
        assert out.count("\n") == 1  # one line
    assert not (tmp_path / "state").exists()  # a reader never creates the store


def test_an_unreadable_store_is_still_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "aggregates.db").write_bytes(b"")  # a file, but not a store
    monkeypatch.setenv("PA_STORE_URL", f"sqlite:///{tmp_path / 'aggregates.db'}")
    code, out, err = run_cli(capsys, "budget", "--json")
    assert code == 1 and out == "" and "privacy-analytics up" in err


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


# --------------------------------------------------------------------------- pinned terms


def test_budget_shows_the_pinned_terms_and_their_log(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "budget", "--dataset", "employees")
    assert code == 0
    assert ("pinned terms: ε cap 3, δ cap 1e-06, policy lifetime, privacy unit: rows are "
            "people (one row per person)") in out
    assert "pinned terms log (6 newest entries):" in out
    log = out.split("pinned terms log")[1]
    assert log.count("first registration") == 6 and "pipeline" in log
    code, out, _ = run_cli(capsys, "budget", "--dataset", "employees", "--json")
    [b] = json.loads(out)["datasets"]
    assert (b["privacy_unit"], b["max_rows_per_unit"], b["rows_are_people"]) == (None, 1, True)
    assert len(b["terms_changes"]) == 6
    assert set(b["terms_changes"][0]) == {"id", "dataset", "changed_at", "actor", "reason",
                                          "setting", "old", "new", "weakens", "forced"}


def test_budget_set_lowers_a_cap_without_force(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "opal")  # the default actor is the OS user name
    code, out, err = run_cli(capsys, "budget", "set", "employees", "--epsilon-cap", "1",
                             "--reason", "tighter after review")
    assert (code, err) == (0, "")
    assert "dataset employees: pinned budget terms changed by opal" in out
    assert "epsilon_cap  3 -> 1" in out and "lowers the cap" in out
    assert "none of these changes weakens the guarantee" in out
    assert "EXHAUSTED" in out  # 1.5 already spent: below the new cap
    code, out, _ = run_cli(capsys, "budget", "--dataset", "employees", "--json")
    [b] = json.loads(out)["datasets"]
    assert b["epsilon_cap"] == 1.0 and b["exhausted"] is True
    newest = b["terms_changes"][0]
    assert (newest["setting"], newest["old"], newest["new"], newest["actor"]) == (
        "epsilon_cap", "3", "1", "opal")
    assert (newest["reason"], newest["weakens"], newest["forced"]) == (
        "tighter after review", False, False)
    # the pipeline now accepts a contract with the new terms, and refuses the old one
    AggregateStore(os.environ["PA_STORE_URL"]).register_dataset(make_contract(cap=1.0))
    with pytest.raises(BudgetTermsChanged, match="epsilon_cap 1 -> 3"):
        AggregateStore(os.environ["PA_STORE_URL"]).register_dataset(make_contract(cap=3.0))


def test_budget_set_refuses_to_weaken_without_force(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["budget", "set", "employees", "--epsilon-cap", "10", "--policy", "window",
            "--window", "month", "--reason", "more analyses", "--actor", "alice"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("refused: dataset 'employees': these changes weaken the guarantee "
                          "and need --force: epsilon_cap 3 -> 10 (raises the cap), policy "
                          "lifetime -> window (weakens the guarantee)")
    assert err.count("\n") == 1
    code, out, _ = run_cli(capsys, "budget", "--dataset", "employees", "--json")
    assert json.loads(out)["datasets"][0]["epsilon_cap"] == 3.0
    code, out, err = run_cli(capsys, *argv, "--force")
    assert (code, err) == (0, "")
    assert "raises the cap: weakens the guarantee (forced)" in out
    assert "these changes weaken the guarantee: epsilon_cap, policy, window" in out
    code, out, _ = run_cli(capsys, "budget", "--dataset", "employees", "--json")
    [b] = json.loads(out)["datasets"]
    assert (b["epsilon_cap"], b["policy"], b["window"]) == (10.0, "window", "month")
    forced = [c for c in b["terms_changes"] if c["forced"]]
    assert {c["setting"] for c in forced} == {"epsilon_cap", "policy", "window"}
    assert {c["actor"] for c in forced} == {"alice"}


def test_budget_set_unit_changes_need_force_rows_per_unit_do_not(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "budget", "set", "employees", "--privacy-unit", "person",
                           "--max-rows-per-unit", "5", "--reason", "per person")
    assert code == 2 and "privacy_unit rows are people -> person" in err and "--force" in err
    code, out, _ = run_cli(capsys, "budget", "set", "employees", "--privacy-unit", "person",
                           "--max-rows-per-unit", "5", "--reason", "per person", "--force")
    assert code == 0 and "max_rows_per_unit  1 -> 5" in out
    code, out, _ = run_cli(capsys, "budget", "set", "employees", "--max-rows-per-unit", "8",
                           "--reason", "longer files")
    assert code == 0 and "changes the noise, not the guarantee" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["budget", "set", "employes", "--epsilon-cap", "1", "--reason", "x"],
         "refused: no dataset 'employes' in the aggregate store (known: employees, sales)"),
        (["budget", "set", "employees", "--epsilon-cap", "3", "--reason", "x"],
         "refused: dataset 'employees': nothing to change"),
        (["budget", "set", "employees", "--reason", "x"],
         "refused: dataset 'employees': nothing to change: give at least one of"),
        (["budget", "set", "employees", "--epsilon-cap", "1", "--reason", "  "],
         "refused: dataset 'employees': say why the terms change with --reason"),
        (["budget", "set", "employees", "--window", "week", "--reason", "x"],
         "refused: dataset 'employees': a window applies only to policy window"),
    ],
)
def test_budget_set_refusals_exit_2_with_one_line(
    store_env: AggregateStore, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["budget", "set", "employees", "--epsilon-cap", "1"],  # --reason is required
        ["budget", "set", "employees", "--epsilon-cap", "-1", "--reason", "x"],
        ["budget", "set", "employees", "--epsilon-cap", "inf", "--reason", "x"],
        ["budget", "set", "employees", "--delta-cap", "1", "--reason", "x"],
        ["budget", "set", "employees", "--policy", "forever", "--reason", "x"],
        ["budget", "set", "employees", "--privacy-unit", "p", "--rows-are-people",
         "--reason", "x"],
        ["budget", "set", "--epsilon-cap", "1", "--reason", "x"],  # no dataset
    ],
)
def test_budget_set_usage_errors_exit_2(store_env: AggregateStore, argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_budget_set_on_a_new_install_is_refused_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PA_STORE_URL", raising=False)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path / "state"))
    code, out, err = run_cli(capsys, "budget", "set", "employees", "--epsilon-cap", "1",
                             "--reason", "x")
    assert code == 2 and out == ""
    assert err.startswith("refused: no dataset 'employees': nothing has been published yet")
    assert not (tmp_path / "state").exists()


def test_budget_set_with_an_unreachable_store_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PA_STORE_URL", "postgresql+psycopg://pa:s3cret@127.0.0.1:1/aggregates")
    code, out, err = run_cli(capsys, "budget", "set", "employees", "--epsilon-cap", "1",
                             "--reason", "x")
    assert code == 1 and out == "" and err.startswith("error: aggregate store")
    assert "s3cret" not in err


def test_help_texts_state_what_each_command_is(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, words in (
        (["runs", "--help"], "operator information, not differentially private"),
        (["budget", "--help"], "budget set"),
        (["budget", "set", "--help"], "need --force"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        out = " ".join(capsys.readouterr().out.split())
        assert words in out, argv
