"""`privacy-analytics plan`: text and JSON output, clear errors, exit codes, and that it
reads the contract only: no data file, no state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.cli import EXIT_ERROR, EXIT_OK, EXIT_REJECTED, main
from privacy.contract import Budget, load_contract
from tests.unit.flows.env import drop_pa_env

ROOT = Path(__file__).resolve().parents[3]
EMPLOYEES = ROOT / "contracts" / "employees.yaml"
SMALL = """\
dataset: small
rows_are_people: true
budget: {epsilon_cap: 10, delta: 1.0e-6, %s}
columns:
  hours: {role: measure, type: float, bounds: [0, 80]}
analyses:
  - kind: summary
"""


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    drop_pa_env(monkeypatch)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path / "no-state"))


def small(tmp_path: Path, budget: str = "epsilon_per_release: 1.0") -> Path:
    path = tmp_path / "contracts" / "small.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(SMALL % budget)
    return path


def test_text_output_has_a_table_per_analysis_and_the_budget(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["plan", str(EMPLOYEES), "--people", "2000", "--runs", "2",
               "--expect", "efficiency=1.2", "project_completion_days=20"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == EXIT_OK
    assert out.startswith("dataset employees (contract v1): a file of 2000 people x 8 rows (16000 rows)")
    assert "efficiency 1.2 (--expect)" in out and "project_completion_days 20 (--expect)" in out
    header = next(line for line in out.splitlines() if line.startswith("analysis "))
    assert header.split() == ["analysis", "value", "expected", "±", "relative", "±"]
    rows = {tuple(line.split()[:2]) for line in out.splitlines()}
    assert ("summary", "count") in rows and ("comparison:efficiency:team", "mean") in rows
    assert "mean efficiency per team" in out and "16,000" in out  # 2000 people x 8 rows
    assert "not predicted:" in out and "quantiles project_completion_days" in out
    assert "ε per release: 1 (δ 2e-08), split over the analyses:" in out
    assert "forecast:finish_date" in out and "0 (post-processing)" in out
    assert "budget: ε cap 50 (policy lifetime): 50 releases at ε 1 each" in out


def test_json_output_with_a_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["plan", str(small(tmp_path)), "--people", "3000", "--json",
               "--target", "summary.count=±1%", "summary=±4%"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert rc == EXIT_OK
    assert doc["dataset"] == "small" and doc["people"] == 3000 and doc["rows_per_person"] == 1
    assert doc["expect"] == {"hours": 40.0} and doc["expect_source"] == {"hours": "midpoint of bounds"}
    count = next(v for v in doc["values"] if v["metric"] == "count")
    assert count["expected"] == 3000 and count["relative"] == pytest.approx(count["half_width"] / 3000)
    assert doc["budget"] == {"epsilon_cap": 10.0, "policy": "lifetime", "window": None,
                             "releases_allowed": 10}  # fmt: skip
    assert sum(s["epsilon"] for s in doc["split"]) == pytest.approx(1.0)
    by_target = {t["target"]: t for t in doc["targets"]}
    c = by_target["summary.count"]
    assert c["reached"] and c["half_width"] <= 0.01 < c["below_half_width"]
    assert c["below"] < c["epsilon"] and c["releases_allowed"] == int(10 / c["epsilon"] + 1e-9)
    assert by_target["summary"]["reached"] and by_target["summary"]["half_width"] <= 0.04


def test_a_window_policy_counts_releases_per_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = small(tmp_path, "epsilon_per_release: 2.5, policy: window, window: month")
    rc = main(["plan", str(path), "--people", "500", "--runs", "1", "--target", "summary.count=±3%"])
    out = capsys.readouterr().out
    assert rc == EXIT_OK
    assert "budget: ε cap 10 per month (policy window): 4 releases per month at ε 2.5 each" in out
    [target] = [line for line in out.splitlines() if line.startswith("target ")]
    assert target.startswith("target summary.count=±3%: ε ") and target.endswith(" releases per month")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.yaml"], "no such contract file"),
        (["{small}", "--expect", "hours"], "--expect 'hours': write MEASURE=NUMBER"),
        (["{small}", "--expect", "salary=3"], "--expect salary: not a measure of the contract"),
        (["{small}", "--expect", "hours=90"], "outside its bounds [0, 80]"),
        (["{small}", "--target", "summary=±x%"], "write ANALYSIS=±X% or ANALYSIS=±X"),
        (["{small}", "--target", "trend=±5%"], "no such analysis; the contract's analyses are"),
        (["{small}", "--target", "summary.median=±5%"], "no predicted median value of summary"),
        (["{small}", "--rows-per-person", "3"], "rows_are_people"),
    ],
)
def test_errors_are_one_line_without_a_traceback(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(small(tmp_path))
    argv = ["plan", *(a.replace("{small}", path) for a in args), "--people", "100", "--runs", "1"]
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == EXIT_ERROR
    assert captured.err.startswith("error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err


def test_an_unreachable_target_prints_the_plan_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["plan", str(small(tmp_path)), "--people", "100", "--runs", "1",
               "--target", "summary.count=±0.01%"])  # fmt: skip
    captured = capsys.readouterr()
    assert rc == EXIT_REJECTED
    assert "summary" in captured.out and "out of reach" in captured.out
    assert captured.err.startswith("unreachable: summary.count=±0.01%: out of reach; the best ε ")
    assert "the cap 10, gives ±" in captured.err


def test_people_must_be_a_whole_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["plan", str(EMPLOYEES), "--people", "0"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


AUDIT = """\
import json, os, sys
import polars as pl

opened = []
sys.addaudithook(lambda event, args: opened.append(os.fsdecode(args[0]))
                 if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)) else None)

def refuse(*args, **kwargs):
    raise AssertionError("the planner read a data file")

for reader in ("read_csv", "scan_csv", "read_parquet", "scan_parquet", "read_json",
               "read_ndjson", "scan_ndjson", "read_ipc", "scan_ipc", "read_excel"):
    setattr(pl, reader, refuse)
from flows.cli import main
rc = main(sys.argv[1:])
print("OPENED=" + json.dumps(opened))
sys.exit(rc)
"""


def test_the_planner_reads_the_contract_and_nothing_else(tmp_path: Path) -> None:
    # an empty working folder, no state dir, a data file next to the contract
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    contract = small(tmp_path)
    (contract.parent / "small.csv").write_text("hours\n1\n2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PA_")}
    env.update(PA_STATE_DIR=str(state), PA_CONTRACTS_DIR=str(contract.parent), PYTHONPATH=str(ROOT))
    r = subprocess.run(
        [sys.executable, "-c", AUDIT, "plan", str(contract), "--people", "200", "--runs", "1"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    opened = json.loads(r.stdout.splitlines()[-1].removeprefix("OPENED="))
    mine = {str(Path(p).resolve()) for p in opened if str(Path(p).resolve()).startswith(str(tmp_path))}
    assert mine == {str(contract.resolve())}
    assert not state.exists() and list(work.iterdir()) == []
    assert "summary" in r.stdout and "count" in r.stdout


def test_a_dataset_release_is_planned_over_f_files(capsys: pytest.CaptureFixture[str]) -> None:
    """12 files of 2000 people x 4 rows: 48 rows per person, of which the example contract's
    release.max_rows_per_unit (24) are kept; its daily schedule fires 365 times a year."""
    rc = main(["plan", str(EMPLOYEES), "--people", "2000", "--rows-per-person", "4",
               "--files", "12", "--runs", "2", "--json"])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert rc == EXIT_OK
    ds = doc["dataset_release"]
    assert (ds["files"], ds["rows_per_person"], ds["bound"]) == (12, 48, 24)
    assert ds["rows_left_out"] == pytest.approx(0.5) and ds["per_year"] == 365
    count = next(v for v in ds["values"] if v["analysis"] == "summary" and v["metric"] == "count")
    assert count["expected"] == 2000 * 24  # what the bound keeps
    # the bound of 24 over all files, against 8 per file: three times the count's noise
    per_file = next(v for v in doc["values"]
                    if v["analysis"] == "summary" and v["metric"] == "count")
    assert count["half_width"] == pytest.approx(3 * per_file["half_width"], rel=0.05)


def test_the_planner_says_which_accounting_gives_less_noise() -> None:
    """The issue's figures, with OpenDP's own conversion: 365 releases under a lifetime
    (ε=10, δ=1e-6) leave pure ε a Laplace sd of 51.6x the sensitivity, zCDP 10.9x (at most
    12x); below about 16 releases pure ε is better; the zCDP total never exceeds the cap."""
    from analytics.dataset_plan import _zcdp_epsilon, compare_accounting

    year = compare_accounting(10.0, 1e-6, 365)
    assert year.laplace_sd == pytest.approx(51.6, abs=0.05)
    assert year.gaussian_sd is not None and year.gaussian_sd <= 12.0 and year.better == "zcdp"
    assert _zcdp_epsilon(year.gaussian_sd, 365, 1e-6) <= 10.0
    assert year.rho_per_release == pytest.approx(0.0042, abs=5e-5)
    assert compare_accounting(10.0, 1e-6, 15).better == "pure"
    assert compare_accounting(10.0, 1e-6, 17).better == "zcdp"
    assert compare_accounting(10.0, 0.0, 365).gaussian_sd is None  # zCDP needs δ > 0


def test_plan_prints_the_accounting_comparison(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(EMPLOYEES), "--people", "500", "--runs", "1",
                 "--releases", "365"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    line = next(x for x in lines if x.startswith("accounting"))
    assert line.startswith("accounting over 365 releases under the cap ε 50, δ 1e-06")
    assert "zCDP gives" in line
    hint = next(x for x in lines if x.startswith("to release under zCDP"))
    rho = float(hint.split("rho_per_release: ")[1].split("}")[0])
    # the ρ it suggests, put in the contract, pays for the 365 releases and not many more
    budget = load_contract(EMPLOYEES).budget.model_dump()
    budget.update(accounting="zcdp", rho_per_release=rho)
    del budget["epsilon_per_release"]
    allowed = Budget.model_validate(budget).releases_allowed
    assert 365 <= allowed <= 367, allowed
