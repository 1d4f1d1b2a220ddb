"""The dashboard's settings: PA_DASHBOARD_* variables, no object-store credentials besides
the upload page's put-only key, no path to raw or masked data, a users file off loopback."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from dashboard.app import create_app
from dashboard.passwords import MIN_ITERATIONS, hash_password
from dashboard.settings import DashboardSettings, is_loopback
from privacy.errors import PipelineError

FIELDS = DashboardSettings.model_fields
#: the upload page's write-only uploader: the only object-store settings allowed
PUT_ONLY = {"landing_dir", "s3_endpoint", "s3_bucket", "s3_put_access_key",
            "s3_put_secret_key", "s3_secure", "s3_region", "max_upload_bytes"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("PA_"):
            monkeypatch.delenv(name)


def test_every_setting_is_documented() -> None:
    for name, field in FIELDS.items():
        assert field.description and len(field.description) > 15, name


def test_no_object_store_credentials_but_the_put_only_key() -> None:
    secretish = {n for n in FIELDS if any(w in n for w in ("key", "secret", "token",
                                                           "password", "credential"))}
    assert secretish <= {"s3_put_access_key", "s3_put_secret_key"}
    s3 = {n for n in FIELDS if n.startswith("s3_")}
    assert s3 <= PUT_ONLY
    assert all("put" in n for n in s3 if "key" in n)


def test_no_path_to_raw_quarantine_or_masked_data() -> None:
    paths = {n for n, f in FIELDS.items() if Path in typing.get_args(f.annotation)
             or f.annotation is Path}
    # the state dir only locates the default SQLite store; the landing dir is write-only;
    # the users file is the one file the dashboard reads
    assert paths == {"state_dir", "landing_dir", "users_file"}
    for banned in ("quarantine", "masked", "objects", "contracts"):
        assert not any(banned in n for n in FIELDS), banned


def test_pipeline_credentials_are_not_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PA_S3_ACCESS_KEY", "pipeline-admin")
    monkeypatch.setenv("PA_S3_SECRET_KEY", "pipeline-secret")
    monkeypatch.setenv("PA_PSEUDONYM_KEY", "hmac-key")
    dumped = DashboardSettings().model_dump_json()
    for value in ("pipeline-admin", "pipeline-secret", "hmac-key"):
        assert value not in dumped


def test_env_prefix_and_state_dir_alias(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PA_STATE_DIR", str(tmp_path))
    assert DashboardSettings().aggregate_store_url == f"sqlite:///{tmp_path}/aggregates.db"
    monkeypatch.setenv("PA_DASHBOARD_STORE_URL", "postgresql+psycopg://ro@db/aggregates")
    monkeypatch.setenv("PA_DASHBOARD_PORT", "9999")
    s = DashboardSettings()
    assert s.aggregate_store_url == "postgresql+psycopg://ro@db/aggregates"
    assert s.port == 9999


def test_loopback_needs_no_login() -> None:
    s = DashboardSettings()
    assert s.host == "127.0.0.1" and not s.login_required
    s.check_startup()
    for host in ("127.0.0.1", "::1", "localhost", "127.1.2.3"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "10.0.0.5", "dashboard.example.org", "::"):
        assert not is_loopback(host)


def _users_yaml() -> str:
    line = hash_password("correct horse", MIN_ITERATIONS)
    return f"users:\n  - name: ana\n    role: viewer\n    password_hash: {line}\n"


def test_off_loopback_refuses_to_start_without_a_users_file(tmp_path: Path) -> None:
    s = DashboardSettings(host="0.0.0.0")
    with pytest.raises(PipelineError, match="PA_DASHBOARD_USERS_FILE"):
        s.check_startup()
    with pytest.raises(PipelineError, match="not loopback"):
        create_app(s)
    users = tmp_path / "users.yaml"
    users.write_text(_users_yaml())
    ok = DashboardSettings(host="0.0.0.0", users_file=users)
    ok.check_startup()
    assert ok.login_required
    inline = DashboardSettings(host="0.0.0.0", users=SecretStr(_users_yaml()))
    inline.check_startup()
    assert inline.login_required


def test_a_users_file_means_a_login_on_loopback_too(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text(_users_yaml())
    assert DashboardSettings(users_file=users).login_required


def test_users_file_and_content_are_not_both_set(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        DashboardSettings(users_file=tmp_path / "u.yaml", users=SecretStr("users: []"))
    with pytest.raises(ValidationError, match="PUT_ACCESS_KEY"):
        DashboardSettings(s3_endpoint="127.0.0.1:9000")


def test_secrets_do_not_leak_into_repr() -> None:
    s = DashboardSettings(users=SecretStr(_users_yaml()),
                          s3_endpoint="h:9000", s3_put_access_key="put-only",
                          s3_put_secret_key=SecretStr("s3cr3t"))
    assert "pbkdf2" not in repr(s) and "s3cr3t" not in repr(s)


def test_every_setting_is_in_the_docs() -> None:
    docs = (Path(__file__).resolve().parents[3] / "docs" / "dashboard.md").read_text()
    for name in FIELDS:
        assert f"`PA_DASHBOARD_{name.upper()}`" in docs, name
