"""Pipeline settings (flows.settings): documented, secret-safe, and read from PA_*."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows.settings import Settings
from privacy.errors import PipelineError
from tests.unit.flows.env import drop_pa_env

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_pa_env(monkeypatch)


def _readme_settings_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(PA_[A-Z0-9_]+)` \|([^\n]*)$", section, flags=re.M)
    return dict(rows)


def test_every_setting_is_in_the_readme_settings_table() -> None:
    rows = _readme_settings_rows()
    missing = [
        f"PA_{name.upper()}" for name in Settings.model_fields if f"PA_{name.upper()}" not in rows
    ]
    assert missing == [], f"add these to README.md's settings table: {missing}"
    unknown = sorted(set(rows) - {f"PA_{n.upper()}" for n in Settings.model_fields})
    assert unknown == [], f"README documents settings that do not exist: {unknown}"


def test_every_setting_has_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, name


def test_settings_come_from_pa_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path / "st"))
    monkeypatch.setenv("PA_MAX_FILE_BYTES", "1234")
    monkeypatch.setenv("PA_KEEP_RAW", "true")
    monkeypatch.setenv("PA_EVENT_NAMESPACE", "myns")
    s = Settings()
    assert s.state == (tmp_path / "st").resolve()
    assert s.max_file_bytes == 1234 and s.keep_raw is True
    assert s.event_name == "myns.object.created"
    assert s.objects_dir == s.state / "objects" and s.prefect_home == s.state / "prefect"
    assert not s.uses_s3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_namespace", "Bad.NS"),
        ("event_namespace", ""),
        ("max_file_bytes", 0),
        ("sweep_interval_seconds", 1),
        ("watch_interval_seconds", 0),
        ("run_limit", 0),
        ("dataset_run_limit", -1),
        ("reservation_timeout_seconds", 5),
        ("log_level", "TRACE"),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_aggregate_store_url_defaults_to_sqlite_in_the_state_dir(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path)
    assert s.aggregate_store_url == f"sqlite:///{tmp_path.resolve() / 'aggregates.db'}"
    url = "postgresql+psycopg://u@h/db"
    assert Settings(state_dir=tmp_path, store_url=url).aggregate_store_url == url


def test_ensure_secrets_creates_private_key_files_once(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path / "state")
    s.ensure_secrets()
    key, token = s.state / "pseudonym.key", s.state / "receiver.token"
    for p in (key, token):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert len(p.read_text().strip()) >= 32
    before = key.read_text(), token.read_text()
    s.ensure_secrets()
    Settings(state_dir=tmp_path / "state").ensure_secrets()
    assert (key.read_text(), token.read_text()) == before
    assert key.read_text() != token.read_text()
    assert s.pseudonym_key_bytes() == before[0].strip().encode()
    assert s.receiver_token_value() == before[1].strip()


def test_ensure_secrets_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    tmp_path.joinpath("pseudonym.key").write_text("operator-chosen\n")
    Settings(state_dir=tmp_path).ensure_secrets()
    assert tmp_path.joinpath("pseudonym.key").read_text() == "operator-chosen\n"


def test_ensure_secrets_writes_no_file_for_secrets_set_in_the_environment(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path, pseudonym_key="k-from-env", receiver_token="t-from-env")  # type: ignore[arg-type]
    s.ensure_secrets()
    assert not (tmp_path / "pseudonym.key").exists()
    assert not (tmp_path / "receiver.token").exists()
    assert s.receiver_token_value() == "t-from-env"


def test_pseudonym_key_prefers_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from_file, from_env = "from-file-" + "f" * 32, "from-env-" + "e" * 32
    path = tmp_path.joinpath("pseudonym.key")
    path.write_text(from_file + "\n")
    path.chmod(0o600)
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path))
    assert Settings().pseudonym_key_bytes() == from_file.encode()
    monkeypatch.setenv("PA_PSEUDONYM_KEY", from_env)
    s = Settings()
    assert s.pseudonym_key_bytes() == from_env.encode()
    assert from_env not in repr(s) and from_env not in str(s.model_dump())
    monkeypatch.setenv("PA_PSEUDONYM_KEY", "")  # set but empty: the file
    assert Settings().pseudonym_key_bytes() == from_file.encode()


def test_a_short_key_or_a_key_file_others_can_read_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("PA_PSEUDONYM_KEY", "k" * 16)  # 16 bytes
    with pytest.raises(PipelineError, match="16 bytes; at least 32") as err:
        Settings().pseudonym_key_bytes()
    assert "k" * 16 not in str(err.value)
    monkeypatch.delenv("PA_PSEUDONYM_KEY")
    path = tmp_path / "pseudonym.key"
    path.write_text("x" * 40 + "\n")
    path.chmod(0o644)
    with pytest.raises(PipelineError, match="chmod 600"):
        Settings().pseudonym_key_bytes()
    path.chmod(0o600)
    assert Settings().pseudonym_key_bytes() == b"x" * 40


def test_no_pseudonym_key_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as err:
        Settings(state_dir=tmp_path).pseudonym_key_bytes()
    assert "PA_PSEUDONYM_KEY" in str(err.value) and "privacy-analytics up" in str(err.value)
    assert Settings(state_dir=tmp_path).receiver_token_value() is None


@pytest.mark.parametrize(
    ("kwargs", "missing", "present"),
    [
        ({"s3_secret_key": "x"}, "PA_S3_ACCESS_KEY", "PA_S3_SECRET_KEY"),
        ({"s3_access_key": "x"}, "PA_S3_SECRET_KEY", "PA_S3_ACCESS_KEY"),
    ],
)
def test_check_s3_names_the_missing_variable(
    kwargs: dict[str, str], missing: str, present: str
) -> None:
    s = Settings(s3_endpoint="minio:9000", **kwargs)  # type: ignore[arg-type]
    assert s.uses_s3
    with pytest.raises(PipelineError) as err:
        s.check_s3()
    assert missing in str(err.value)
    assert present not in str(err.value)


def test_check_s3_names_both_when_both_are_missing() -> None:
    with pytest.raises(PipelineError) as err:
        Settings(s3_endpoint="minio:9000").check_s3()
    assert "PA_S3_ACCESS_KEY" in str(err.value) and "PA_S3_SECRET_KEY" in str(err.value)


def test_check_s3_passes_when_complete_or_unused() -> None:
    Settings().check_s3()
    Settings(s3_endpoint="minio:9000", s3_access_key="a", s3_secret_key="b").check_s3()  # type: ignore[arg-type]
