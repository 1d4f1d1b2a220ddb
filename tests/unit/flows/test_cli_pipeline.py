"""The `privacy-analytics` command line: --help everywhere, `drop` and `demo` on a temp state
dir (flows.cli, flows.cli_pipeline)."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
from pathlib import Path

import pytest

from flows.cli import build_parser, main
from tests.unit.flows.env import drop_pa_env

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / ".venv" / "bin" / "privacy-analytics"


@pytest.fixture(autouse=True)
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    drop_pa_env(monkeypatch)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def _commands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found


COMMANDS = _commands(build_parser())


def test_the_documented_commands_exist() -> None:
    top = {c[0] for c in COMMANDS if len(c) == 1}
    assert {"up", "drop", "process", "demo", "runs", "releases", "budget", "contract"} <= top


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "(top)")
def test_help_everywhere(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: privacy-analytics")
    assert len(out.splitlines()) >= 3


def test_console_script_help() -> None:
    r = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "drop" in r.stdout and "process" in r.stdout and "PA_" in r.stdout


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "required" in capsys.readouterr().err


def test_drop_puts_the_file_into_landing(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "Q1 report.csv"
    src.write_bytes(b"a,b\n1,2\n")
    assert main(["drop", str(src), "--dataset", "employees"]) == 0
    dest = state / "objects" / "landing" / "employees" / "Q1 report.csv"
    assert dest.read_bytes() == src.read_bytes()
    out = capsys.readouterr().out
    assert "landing/employees/Q1 report.csv" in out
    assert hashlib.md5(src.read_bytes()).hexdigest() in out
    assert [p.name for p in dest.parent.iterdir()] == ["Q1 report.csv"]  # no temp files left


@pytest.mark.parametrize("dataset", ["../etc", "a/b", "", "bad name", "x" * 65, "еmployees"])
def test_drop_refuses_a_bad_dataset_name(
    dataset: str, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "a.csv"
    src.write_bytes(b"a\n1\n")
    assert main(["drop", str(src), "--dataset", dataset]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: dataset name")
    assert "letters, digits" in err and len(err.strip().splitlines()) == 1
    landing = state / "objects" / "landing"
    assert not landing.exists() or list(landing.rglob("*.csv")) == []


def test_drop_refuses_a_bad_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "a;b.csv"
    src.write_bytes(b"a\n1\n")
    assert main(["drop", str(src), "--dataset", "ds"]) == 1
    assert "file name" in capsys.readouterr().err


def test_drop_of_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drop", str(tmp_path / "nope.csv"), "--dataset", "ds"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_demo_drops_a_synthetic_employee_file(
    state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PA_CONTRACTS_DIR", str(ROOT / "contracts"))
    assert main(["demo", "--rows", "60", "--seed", "3"]) == 0
    (dropped,) = (state / "objects" / "landing" / "employees").iterdir()
    lines = dropped.read_text().splitlines()
    assert lines[0].startswith("employee_id,name,email,team")
    assert len(lines) == 61
    assert "landing/employees/" in capsys.readouterr().out


def test_demo_without_the_example_contract_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PA_CONTRACTS_DIR", str(tmp_path / "no-contracts"))
    assert main(["demo"]) == 1
    assert "PA_CONTRACTS_DIR" in capsys.readouterr().err
