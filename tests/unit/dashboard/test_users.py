"""The users file and its password hashes: PBKDF2-HMAC-SHA256 lines, roles, upload lists,
errors that name the entry but never the hash, and ``python -m dashboard hash-password``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from dashboard.__main__ import main
from dashboard.passwords import (
    DEFAULT_ITERATIONS,
    MIN_ITERATIONS,
    PasswordHashError,
    hash_password,
    parse_hash,
    verify_password,
)
from dashboard.settings import DashboardSettings
from dashboard.users import UsersFileError, load_users, parse_users

ROOT = Path(__file__).resolve().parents[3]
LINE = hash_password("s3cret", MIN_ITERATIONS)


def test_hash_lines_verify_and_are_salted() -> None:
    scheme, rounds, _salt, _digest = LINE.split("$")
    assert scheme == "pbkdf2_sha256" and int(rounds) == MIN_ITERATIONS
    assert verify_password("s3cret", LINE) and not verify_password("s3cret ", LINE)
    assert hash_password("s3cret", MIN_ITERATIONS) != LINE  # a fresh random salt
    iterations, salt_bytes, hash_bytes = parse_hash(LINE)
    assert iterations == MIN_ITERATIONS and len(salt_bytes) == 16 and len(hash_bytes) == 32


def test_the_default_iteration_count_is_high() -> None:
    assert DEFAULT_ITERATIONS >= 600_000


@pytest.mark.parametrize("line", [
    "s3cret", "md5$1$2$3", "pbkdf2_sha256$1000$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
    "pbkdf2_sha256$600000$not base64$x", "pbkdf2_sha256$600000$$",
])
def test_malformed_hashes_are_refused_without_echoing_them(line: str) -> None:
    with pytest.raises(PasswordHashError) as err:
        verify_password("x", line)
    assert line not in str(err.value) or len(line) < 8


def test_empty_passwords_are_not_hashed() -> None:
    with pytest.raises(PasswordHashError):
        hash_password("")


def _file(*entries: str) -> str:
    return "users:\n" + "".join(f"  - {e}\n" for e in entries)


def test_roles_and_upload_lists() -> None:
    users = parse_users(_file(
        f"{{name: ana, role: viewer, password_hash: '{LINE}'}}",
        f"{{name: olu, role: operator, password_hash: '{LINE}', upload_datasets: [a, b]}}",
        f"{{name: root, role: operator, password_hash: '{LINE}', upload_datasets: '*'}}",
        f"{{name: ops, role: operator, password_hash: '{LINE}'}}",
    ))
    ana, olu, root, ops = (users.users[n] for n in ("ana", "olu", "root", "ops"))
    assert not ana.is_operator and not ana.may_upload("a")
    assert olu.may_upload("a") and not olu.may_upload("c")
    assert olu.uploadable(["c", "b"]) == ["b", "a"]
    assert root.may_upload("anything") and not ops.may_upload("a")
    assert users.authenticate("olu", "s3cret") is olu
    assert users.authenticate("olu", "s3cret") is olu  # the remembered check
    assert users.authenticate("olu", "wrong") is None
    assert users.authenticate("nobody", "s3cret") is None


@pytest.mark.parametrize(("text", "expect"), [
    ("users: []", "at least 1"),
    (_file("{name: ana, role: admin, password_hash: x}"), "users.0.role"),
    (_file(f"{{name: 'a:b', role: viewer, password_hash: '{LINE}'}}"), "no ':'"),
    (_file(f"{{name: ana, role: viewer, password_hash: '{LINE}', upload_datasets: [a]}}"),
     "viewers cannot upload"),
    (_file(f"{{name: ana, role: viewer, password_hash: '{LINE}'}}",
           f"{{name: ana, role: operator, password_hash: '{LINE}'}}"), "listed twice"),
    (_file(f"{{name: ana, role: viewer, role: operator, password_hash: '{LINE}'}}"),
     "given twice"),
    (_file("{name: ana, role: viewer, password_hash: plain-text-password}"), "users.0 (ana)"),
    (_file(f"{{name: ana, role: viewer, password: x, password_hash: '{LINE}'}}"),
     "users.0.password"),
    ("users: [", "line"),
])
def test_broken_users_files_are_explained(text: str, expect: str) -> None:
    with pytest.raises(UsersFileError) as err:
        parse_users(text, "users file u.yaml")
    message = str(err.value)
    assert expect in message and message.startswith("users file u.yaml")
    assert LINE not in message and "plain-text-password" not in message


def test_load_users_from_a_file_or_its_content(tmp_path: Path) -> None:
    assert load_users(DashboardSettings()) is None
    path = tmp_path / "users.yaml"
    path.write_text(_file(f"{{name: ana, role: viewer, password_hash: '{LINE}'}}"))
    assert set(load_users(DashboardSettings(users_file=path)).users) == {"ana"}
    inline = DashboardSettings(users=SecretStr(path.read_text()))
    assert set(load_users(inline).users) == {"ana"}
    with pytest.raises(UsersFileError, match="PA_DASHBOARD_USERS_FILE"):
        load_users(DashboardSettings(users_file=tmp_path / "missing.yaml"))


def test_hash_password_reads_stdin_and_prints_a_line(monkeypatch, capsys) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert main(["hash-password", "--iterations", str(MIN_ITERATIONS)]) == 0
    line = capsys.readouterr().out.strip()
    assert verify_password("correct horse", line)


def test_hash_password_refuses_an_empty_password(monkeypatch, capsys) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    assert main(["hash-password"]) == 1
    assert capsys.readouterr().out == ""


def test_hash_password_never_takes_the_password_from_argv() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dashboard", "hash-password", "--iterations",
         str(MIN_ITERATIONS)],
        input="pw from stdin\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
        check=True,
    )
    assert verify_password("pw from stdin", proc.stdout.strip())
    refused = subprocess.run(
        [sys.executable, "-m", "dashboard", "hash-password", "hunter2"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr
