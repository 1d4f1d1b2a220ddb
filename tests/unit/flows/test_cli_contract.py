"""`privacy-analytics contract infer|check|schema`: output, exit codes, no values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, EXIT_REJECTED, main
from privacy.contract import parse_contract

CONTRACTS = Path(__file__).resolve().parent.parent / "privacy" / "contracts"
CANARY = "qqcanary42zz"


def _contract_cli(command: str, data: Path, dataset: str, *extra: str) -> int:
    """``privacy-analytics contract <command> <data> --dataset <dataset> <extra>``: its exit
    code."""
    return main(["contract", command, str(data), "--dataset", dataset, *extra])


def test_infer_prints_a_valid_draft(
    real_datasets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = _contract_cli("infer", Path(real_datasets) / "covid_testing.csv", "covid")
    out = capsys.readouterr().out
    assert rc == EXIT_OK
    c = parse_contract(out)
    assert c.dataset == "covid" and c.columns["fake_last_name"].role.value == "identifier"


def test_check_ok_with_default_contracts_dir(
    real_datasets: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shutil.copy(CONTRACTS / "wage_survey.yaml", tmp_path / "wage_survey.yaml")
    monkeypatch.setenv("PA_CONTRACTS_DIR", str(tmp_path))
    rc = _contract_cli("check", Path(real_datasets) / "wage_survey.csv", "wage_survey")
    out = capsys.readouterr().out
    assert rc == EXIT_OK
    assert "rows: 3000" in out and "result: ok" in out


def test_check_bad_file_exits_2_with_counts_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = CONTRACTS.parent.parent.parent / "data" / "wage_survey.csv"
    lines = src.read_text().splitlines()
    header = lines[0].split(",")
    age = header.index("age")
    bad = []
    for i, line in enumerate(lines[1:50]):
        cells = line.split(",")
        if i < 3:
            cells[age] = CANARY
        bad.append(",".join(cells))
    f = tmp_path / "wage.csv"
    f.write_text("\n".join([lines[0], *bad]) + "\n")
    # by default the three unreadable ages become nulls and the file passes
    rc = _contract_cli("check", f, "wage_survey", "--contract", str(CONTRACTS / "wage_survey.yaml"),
                       "--json")
    cap = capsys.readouterr()
    assert rc == EXIT_OK, cap.err
    report = json.loads(cap.out)
    assert report["ok"] is True and report["rows"] == 49 and report["values_nulled"] == 3
    assert CANARY not in cap.out + cap.err
    # a contract that opts in to whole-file rejection refuses it
    strict = tmp_path / "wage_survey.yaml"
    strict.write_text((CONTRACTS / "wage_survey.yaml").read_text() + "on_bad_value: reject\n")
    rc = _contract_cli("check", f, "wage_survey", "--contract", str(strict), "--json")
    cap = capsys.readouterr()
    assert rc == EXIT_REJECTED
    report = json.loads(cap.out)
    assert report["ok"] is False and report["rows"] == 49
    reason = cap.err.strip()
    assert reason.startswith("rejected:") and "'age'" in reason and "3 rows" in reason
    assert "\n" not in reason and CANARY not in cap.out + cap.err


def test_check_broken_contract_names_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "d.yaml"
    bad.write_text(
        "dataset: d\nrows_are_people: true\nbudget: {epsilon_cap: 1}\ncolumns:\n"
        "  x: {role: measure, type: float, bounds: [5, 1]}\n"
    )
    data = tmp_path / "d.csv"
    data.write_text("x\n1\n")
    rc = _contract_cli("check", data, "d", "--contract", str(bad))
    err = capsys.readouterr().err.strip()
    assert rc != EXIT_OK
    assert "columns.x.bounds" in err and "\n" not in err


def test_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "schema"]) == EXIT_OK
    schema = json.loads(capsys.readouterr().out)
    committed = json.loads(
        (CONTRACTS.parent.parent.parent.parent / "contracts" / "contract.schema.json").read_text()
    )
    assert schema == committed  # regenerate with: privacy-analytics contract schema
