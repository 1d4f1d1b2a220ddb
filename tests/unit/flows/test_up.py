"""`up`'s environments (flows.up): the dashboard gets nothing of the pipeline's secrets, every
other process is pinned to our own Prefect server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.settings import Settings
from flows.up import dashboard_env, prefect_env


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        contracts_dir=tmp_path / "contracts",
        dashboard_host="127.0.0.2",
        dashboard_port=8111,
    )


def test_dashboard_env_strips_pipeline_secrets(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = {
        "PA_S3_ENDPOINT": "minio:9000",
        "PA_S3_ACCESS_KEY": "AKIA-SECRET-VALUE",
        "PA_S3_SECRET_KEY": "S3-SECRET-VALUE",
        "PA_PSEUDONYM_KEY": "PSEUDONYM-SECRET-VALUE",
        "PA_RECEIVER_TOKEN": "RECEIVER-SECRET-VALUE",
        "PA_STATE_DIR": "/somewhere",
        "PREFECT_API_KEY": "PREFECT-SECRET-VALUE",
        "PREFECT_API_URL": "http://elsewhere/api",
        "AWS_SECRET_ACCESS_KEY": "AWS-SECRET-VALUE",
        "MINIO_ROOT_PASSWORD": "MINIO-SECRET-VALUE",
        "PA_DASHBOARD_TITLE": "Our numbers",
        "HOME_SOMETHING_UNRELATED": "kept",
    }
    for k, v in planted.items():
        monkeypatch.setenv(k, v)
    env = dashboard_env(settings, "http://127.0.0.1:4200")
    leaked = sorted(
        k
        for k in env
        if k.startswith(("PA_", "PREFECT_", "AWS_", "MINIO_")) and not k.startswith("PA_DASHBOARD_")
    )
    assert leaked == []
    for secret in ("SECRET-VALUE", "/somewhere", "elsewhere"):
        assert not [k for k, v in env.items() if secret in v], secret
    assert env["PA_DASHBOARD_TITLE"] == "Our numbers"
    assert env["HOME_SOMETHING_UNRELATED"] == "kept"
    assert env["PA_DASHBOARD_STORE_URL"] == settings.aggregate_store_url
    assert env["PA_DASHBOARD_HOST"] == "127.0.0.2" and env["PA_DASHBOARD_PORT"] == "8111"
    assert env["PA_DASHBOARD_PREFECT_UI_URL"] == "http://127.0.0.1:4200"
    assert env["PA_DASHBOARD_LANDING_DIR"] == str(settings.objects_dir / "landing")


def test_dashboard_env_on_s3_has_no_landing_dir(tmp_path: Path) -> None:
    s = Settings(state_dir=tmp_path, s3_endpoint="minio:9000", s3_access_key="a", s3_secret_key="b")  # type: ignore[arg-type]
    env = dashboard_env(s, "http://127.0.0.1:4200")
    assert "PA_DASHBOARD_LANDING_DIR" not in env
    assert not [k for k, v in env.items() if "minio:9000" in v or v == "b"]


def test_prefect_env_pins_the_server_and_turns_analytics_off(settings: Settings) -> None:
    env = prefect_env(settings, "http://127.0.0.1:4999/api")
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4999/api"
    assert env["PREFECT_UI_URL"] == "http://127.0.0.1:4999"
    assert env["PREFECT_HOME"] == str(settings.prefect_home)
    assert Path(env["PREFECT_HOME"]).is_relative_to(settings.state)
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    # leases of the per-dataset concurrency limits survive a restart (flows/concurrency.py)
    assert env["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"].endswith(".filesystem")
    assert env["DO_NOT_TRACK"] == "1"
    assert env["GX_ANALYTICS_ENABLED"] == "false"
    assert env["PREFECT_RESULTS_PERSIST_BY_DEFAULT"] == "false"
    assert env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("sqlite+aiosqlite:///")
    assert str(settings.prefect_home) in env["PREFECT_API_DATABASE_CONNECTION_URL"]
    # children must find the same state and contracts whatever their working directory
    assert Path(env["PA_STATE_DIR"]).is_absolute() and Path(env["PA_CONTRACTS_DIR"]).is_absolute()
    assert all(isinstance(v, str) for v in env.values())
    assert not [k for k in env if "KEY" in k or "TOKEN" in k or "SECRET" in k]


def test_prefect_env_does_not_depend_on_the_callers_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = prefect_env(settings, "http://127.0.0.1:4999/api")
    monkeypatch.setenv("PREFECT_API_URL", "http://elsewhere/api")
    monkeypatch.setenv("PREFECT_HOME", "/elsewhere")
    assert prefect_env(settings, "http://127.0.0.1:4999/api") == before
    assert os.environ["PREFECT_API_URL"] == "http://elsewhere/api"
