"""Static checks of infra/compose.yaml: structure, settings, secrets, least privilege, networks.

There is no Docker engine here, so the file is parsed with PyYAML and checked against the
code it deploys (the pipeline's and the dashboard's settings models) and against the
deployment's own promises (infra/README.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from dashboard.settings import DashboardSettings
from flows.settings import Settings
from tests.unit.infra.conftest import (
    APP_SERVICES,
    INFRA,
    ROOT,
    depends_of,
    env_of,
    interpolate,
    networks_of,
)

PIPELINE_FIELDS = {f"PA_{name.upper()}" for name in Settings.model_fields}
DASHBOARD_FIELDS = {f"PA_DASHBOARD_{name.upper()}" for name in DashboardSettings.model_fields}
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|PSEUDONYM_KEY|PRIVATE", re.IGNORECASE)
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def _setting_name(var: str) -> str:
    return var.removesuffix("_FILE")


# --------------------------------------------------------------------------- structure


def test_every_service_has_an_image_or_a_build(services: dict[str, Any]) -> None:
    assert services, "no services in infra/compose.yaml"
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"service {name} has neither image nor build"


def test_the_architecture_s_services_are_all_there(services: dict[str, Any]) -> None:
    expected = {
        "minio", "minio-setup", "postgres", "prefect-server", "pipeline", "receiver",
        "dashboard",
    }
    assert expected <= set(services), f"missing: {sorted(expected - set(services))}"


def test_app_services_build_from_the_project_dockerfile(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert build["dockerfile"] == "infra/Dockerfile", name
        assert (INFRA / build["context"] / build["dockerfile"]).resolve() == INFRA / "Dockerfile"


def test_commands_are_the_ones_the_embedded_default_starts(services: dict[str, Any]) -> None:
    assert services["pipeline"]["command"] == ["python", "-m", "flows.serve"]
    assert services["receiver"]["command"] == ["python", "-m", "flows.receiver"]
    assert services["dashboard"]["command"] == ["python", "-m", "dashboard"]
    server = services["prefect-server"]["command"]
    assert server[:3] == ["prefect", "server", "start"]
    assert "--analytics-off" in server
    assert "--no-services" not in server, "event triggers need the server's services"


@pytest.mark.parametrize(
    "name",
    ["minio", "postgres", "prefect-server", "receiver", "pipeline", "dashboard", "s3-upload"],
)
def test_long_running_services_have_healthchecks(services: dict[str, Any], name: str) -> None:
    check = services[name].get("healthcheck") or {}
    test = check.get("test")
    assert isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"), (
        f"{name}: healthcheck.test must be a CMD list"
    )
    assert len(test) > 1 and not check.get("disable"), name


def test_healthchecks_probe_the_port_the_service_listens_on(services: dict[str, Any]) -> None:
    def port_in(check: list[str]) -> int:
        m = re.search(r"127\.0\.0\.1:(\d+)/", " ".join(check))
        assert m, check
        return int(m.group(1))

    prefect = services["prefect-server"]
    assert port_in(prefect["healthcheck"]["test"]) == int(
        prefect["command"][prefect["command"].index("--port") + 1]
    )
    recv_env = env_of(services["receiver"])
    assert port_in(services["receiver"]["healthcheck"]["test"]) == int(recv_env["PA_RECEIVER_PORT"])
    dash_env = env_of(services["dashboard"])
    assert port_in(services["dashboard"]["healthcheck"]["test"]) == int(
        dash_env["PA_DASHBOARD_PORT"]
    )
    pipe_env = env_of(services["pipeline"])
    assert pipe_env["PREFECT_RUNNER_SERVER_ENABLE"] == "true"
    assert port_in(services["pipeline"]["healthcheck"]["test"]) == int(
        pipe_env["PREFECT_RUNNER_SERVER_PORT"]
    )
    pg = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in pg and "-h" in pg, "probe TCP: first-start initialisation is not ready"


def test_depends_on_uses_conditions_that_can_be_met(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for dep, spec in depends_of(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            cond = spec.get("condition")
            assert cond in CONDITIONS, f"{name} -> {dep}: give a condition, one of {CONDITIONS}"
            target = services[dep]
            if cond == "service_healthy":
                assert target.get("healthcheck"), f"{name} waits for {dep} healthy; it has no check"
            if cond == "service_completed_successfully":
                assert target.get("restart") == "no", f"{dep} is one-shot: restart must be 'no'"
            if "profiles" in target:
                assert set(svc.get("profiles", [])) & set(target["profiles"]), (
                    f"{name} depends on {dep}, which only runs in profiles {target['profiles']}"
                )


def test_start_order_has_no_cycle(services: dict[str, Any]) -> None:
    graph = {name: set(depends_of(svc)) for name, svc in services.items()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"depends_on has a cycle: {exc.args[1]}")
    # the chain the data flow needs
    for before, after in [
        ("postgres", "prefect-server"), ("prefect-server", "receiver"), ("receiver", "minio-setup"),
        ("minio", "minio-setup"), ("minio-setup", "pipeline"), ("store-migrate", "pipeline"),
        ("store-migrate", "dashboard"), ("postgres", "dashboard"),
    ]:
        assert order.index(before) < order.index(after), f"{before} must start before {after}"


def test_key_dependencies_wait_for_health(services: dict[str, Any]) -> None:
    def cond(svc: str, dep: str) -> str | None:
        return depends_of(services[svc]).get(dep, {}).get("condition")

    assert cond("pipeline", "prefect-server") == "service_healthy"
    assert cond("pipeline", "postgres") == "service_healthy"
    assert cond("pipeline", "minio-setup") == "service_completed_successfully"
    assert cond("minio-setup", "minio") == "service_healthy"
    assert cond("minio-setup", "receiver") == "service_healthy"
    assert cond("prefect-server", "postgres") == "service_healthy"
    assert cond("receiver", "prefect-server") == "service_healthy"
    assert cond("dashboard", "postgres") == "service_healthy"


def test_bind_mounts_point_at_files_in_the_repository(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith("."):
                assert (INFRA / source).exists(), f"{name}: bind mount source {source} is missing"


def test_readonly_role_script_is_mounted_where_the_init_script_reads_it(
    services: dict[str, Any],
) -> None:
    pg = services["postgres"]
    target = env_of(pg)["READONLY_ROLE_SQL"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in pg["volumes"]}
    assert (INFRA / mounts[target]).resolve() == ROOT / "analytics" / "sql" / "readonly_role.sql"
    init = INFRA / mounts["/docker-entrypoint-initdb.d"] / "10-databases.sh"
    # executable: the postgres image runs it (a non-executable one would be sourced into
    # the image's own entrypoint shell)
    assert init.is_file() and os.access(init, os.X_OK)


# --------------------------------------------------------------------------- settings


def test_every_pa_variable_is_a_real_setting(services: dict[str, Any]) -> None:
    unknown = []
    for name, svc in services.items():
        for var in env_of(svc):
            if not var.startswith("PA_"):
                continue
            setting = _setting_name(var)
            fields = DASHBOARD_FIELDS if setting.startswith("PA_DASHBOARD_") else PIPELINE_FIELDS
            if setting not in fields:
                unknown.append(f"{name}: {var}")
    assert not unknown, f"not a setting of flows.settings / dashboard.settings: {unknown}"


def test_dashboard_variables_only_on_the_dashboard(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        dash_vars = [v for v in env_of(svc) if v.startswith("PA_DASHBOARD_")]
        other_pa = [v for v in env_of(svc) if v.startswith("PA_") and v not in dash_vars]
        if name == "dashboard":
            assert not other_pa, f"the dashboard gets pipeline settings: {other_pa}"
        else:
            assert not dash_vars, f"{name} gets dashboard settings: {dash_vars}"


def _dummy(secret: str) -> str:
    """The stand-in content of a secret file (40 characters: keys have a minimum length)."""
    return f"dummy-{secret}".ljust(40, "x")


def _resolved_env(svc: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """The service's environment with defaults filled in and each *_FILE secret read from a
    dummy file, as the image's entrypoint would."""
    out: dict[str, str] = {}
    for var, raw in env_of(svc).items():
        value = interpolate(raw)
        if var.endswith("_FILE") and value.startswith("/run/secrets/"):
            out[var.removesuffix("_FILE")] = _dummy(value.rsplit("/", 1)[1])
        else:
            out[var] = value
    return out


@pytest.mark.parametrize("name", ["pipeline", "receiver", "store-migrate", "worker"])
def test_pipeline_settings_load_from_the_compose_environment(
    services: dict[str, Any], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in list(os.environ):
        if var.startswith("PA_"):
            monkeypatch.delenv(var)
    env = _resolved_env(services[name], tmp_path)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    settings = Settings()
    settings.check_s3()
    if name in ("pipeline", "worker"):
        assert settings.uses_s3 and settings.s3_endpoint == "minio:9000"
        assert settings.pseudonym_key_bytes() == _dummy("pseudonym_key").encode()
        assert settings.s3_region, "set PA_S3_REGION: the SDK then never asks GetBucketLocation"
    if name in ("pipeline", "worker", "store-migrate"):
        url = make_url(settings.aggregate_store_url)
        assert url.drivername == "postgresql+psycopg" and url.username == "pa_writer"
        assert url.password is None, "the password comes from PGPASSWORD_FILE, not the URL"
        assert url.database == "aggregates"
        assert env["PGPASSWORD"] == _dummy("store_writer_password")
    if name == "receiver":
        assert settings.receiver_host == "0.0.0.0"
        assert settings.receiver_token_value() == _dummy("receiver_token")


def test_dashboard_settings_load_and_require_a_login(
    services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in list(os.environ):
        if var.startswith("PA_"):
            monkeypatch.delenv(var)
    env = _resolved_env(services["dashboard"], tmp_path)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    settings = DashboardSettings()
    settings.check_startup()  # off loopback: refuses to start without a users file
    assert settings.host == "0.0.0.0" and settings.login_required
    assert env["PA_DASHBOARD_USERS"] == _dummy("dashboard_users"), "the users file is a secret"
    assert settings.uploads_enabled and settings.s3_endpoint == "s3-upload:9000"
    assert settings.s3_region, "set PA_DASHBOARD_S3_REGION: put-only keys may not GetBucketLocation"
    url = make_url(settings.aggregate_store_url)
    assert url.username == "pa_reader" and url.password is None and url.database == "aggregates"
    assert env["PGPASSWORD"] == _dummy("store_reader_password")


def test_prefect_api_url_is_set_in_every_prefect_process(services: dict[str, Any]) -> None:
    for name in APP_SERVICES - {"dashboard"}:
        env = env_of(services[name])
        assert env.get("PREFECT_API_URL", "").endswith("/api"), (
            f"{name}: without PREFECT_API_URL Prefect silently starts a private ephemeral server"
        )
        assert env.get("PREFECT_SERVER_ANALYTICS_ENABLED") == "false", name
        assert env.get("DO_NOT_TRACK") == "1", name
    for name in APP_SERVICES - {"dashboard", "prefect-server"}:
        assert env_of(services[name])["PREFECT_API_URL"] == "http://prefect-server:4200/api"


def test_prefect_server_uses_postgresql(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.settings import Settings as PrefectSettings

    env = env_of(services["prefect-server"])
    raw = interpolate(env["PREFECT_API_DATABASE_CONNECTION_URL"])
    assert "@" in raw and ":$" in raw, "the password is Prefect's placeholder, not a literal"
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", raw)
    monkeypatch.setenv("PREFECT_SERVER_DATABASE_PASSWORD", "s3cr3t-from-file")
    url = PrefectSettings().server.database.connection_url.get_secret_value()
    assert url == "postgresql+asyncpg://prefect:s3cr3t-from-file@postgres:5432/prefect"
    assert env["PREFECT_SERVER_DATABASE_PASSWORD_FILE"].startswith("/run/secrets/")
    assert interpolate(env["PREFECT_UI_API_URL"]).endswith("/api")


def test_store_migrate_command_creates_the_schema(services: dict[str, Any], tmp_path: Path) -> None:
    """Run the one-shot's real command (through the image's entrypoint) on a SQLite store."""
    svc = services["store-migrate"]
    command = svc["command"]
    assert command[0] == "python"
    db = tmp_path / "aggregates.db"
    env = {"PATH": "/usr/bin:/bin", "PA_STORE_URL": f"sqlite:///{db}", "HOME": str(tmp_path)}
    proc = subprocess.run(
        ["bash", str(INFRA / "docker" / "entrypoint.sh"), sys.executable, *command[1:]],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    tables = set(inspect(create_engine(f"sqlite:///{db}")).get_table_names())
    assert {"alembic_version", "datasets", "ledger", "releases", "runs"} <= tables


# --------------------------------------------------------------------------- the dashboard


def test_dashboard_has_no_object_store_or_pipeline_secrets(services: dict[str, Any]) -> None:
    dash = services["dashboard"]
    names = {_setting_name(v) for v in env_of(dash)}
    for forbidden in ("PA_S3_SECRET_KEY", "PA_S3_ACCESS_KEY", "PA_PSEUDONYM_KEY", "PA_STORE_URL",
                      "PA_S3_ENDPOINT", "PA_RECEIVER_TOKEN", "MINIO_ROOT_PASSWORD"):
        assert forbidden not in names, f"the dashboard must not get {forbidden}"
    assert set(dash.get("secrets", [])) <= {
        "store_reader_password", "dashboard_users", "s3_uploader_secret_key"
    }


def test_dashboard_has_no_volumes(services: dict[str, Any]) -> None:
    assert not services["dashboard"].get("volumes"), "the dashboard reads no files: no volumes"
    assert not services["dashboard"].get("volumes_from")


def test_dashboard_cannot_reach_minio(compose: dict[str, Any], services: dict[str, Any]) -> None:
    dash_nets = networks_of(services["dashboard"])
    assert dash_nets, "the dashboard must name its networks (the default network joins everyone)"
    assert not dash_nets & networks_of(services["minio"]), "dashboard and MinIO share a network"
    reachable = {
        name
        for name, svc in services.items()
        if name != "dashboard" and networks_of(svc) & dash_nets
    }
    assert reachable <= {"postgres", "s3-upload"}, f"the dashboard can reach {sorted(reachable)}"
    assert env_of(services["dashboard"])["PA_DASHBOARD_S3_ENDPOINT"].split(":")[0] == "s3-upload"


def test_only_the_pipeline_holds_the_pseudonym_key(services: dict[str, Any]) -> None:
    holders = {n for n, s in services.items() if "pseudonym_key" in (s.get("secrets") or [])}
    assert holders <= {"pipeline", "worker"} and "pipeline" in holders


def test_only_postgres_and_its_owner_hold_the_writer_password(services: dict[str, Any]) -> None:
    holders = {
        n for n, s in services.items() if "store_writer_password" in (s.get("secrets") or [])
    }
    assert holders <= {"postgres", "pipeline", "worker", "store-migrate"}


# --------------------------------------------------------------------------- secrets


def test_no_literal_secrets_in_the_environment(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for var, raw in env_of(svc).items():
            if var.endswith("_FILE"):
                continue
            if SECRET_WORDS.search(var) and var != "PREFECT_API_DATABASE_CONNECTION_URL":
                pytest.fail(f"{name}: {var} is a secret; give {var}_FILE=/run/secrets/... instead")
            assert not re.search(r"\$\{[^}]*(PASSWORD|SECRET|TOKEN)", raw.replace("$${", "")), (
                f"{name}: {var} interpolates a secret from the host environment"
            )
            if "://" in raw and "@" in raw:
                creds = raw.split("://", 1)[1].split("@", 1)[0]
                if ":" in creds:
                    assert creds.split(":", 1)[1].startswith("$${"), (
                        f"{name}: {var} has a password in its URL"
                    )


def test_file_secrets_point_at_secrets_the_service_mounts(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose["secrets"])
    for name, svc in services.items():
        mounted = set(svc.get("secrets") or [])
        assert mounted <= declared, f"{name} uses undeclared secrets {mounted - declared}"
        for var, value in env_of(svc).items():
            if var.endswith("_FILE"):
                assert value.startswith("/run/secrets/"), f"{name}: {var}={value}"
                assert value.removeprefix("/run/secrets/") in mounted, (
                    f"{name}: {var} reads {value} but the service does not mount that secret"
                )


def test_secret_files_are_generated_and_never_committed(compose: dict[str, Any]) -> None:
    script = (INFRA / "secrets" / "generate.sh").read_text()
    names_block = re.search(r"NAMES=\((.*?)\)", script, re.S)
    assert names_block
    generated = set(names_block.group(1).split()) | {"minio_root_user"}
    for name, spec in compose["secrets"].items():
        path = spec["file"]
        assert path == f"./secrets/{name}", f"secret {name}: keep it in infra/secrets/{name}"
        assert name in generated, f"infra/secrets/generate.sh does not create {name}"
    assert "*" in (INFRA / "secrets" / ".gitignore").read_text().split()
    listed = subprocess.run(
        ["git", "check-ignore", "-q", "infra/secrets/pseudonym_key"], cwd=ROOT, check=False
    )
    assert listed.returncode == 0, "git must ignore infra/secrets/*"


def test_generate_script_creates_every_secret_once(tmp_path: Path) -> None:
    script = tmp_path / "generate.sh"
    script.write_text((INFRA / "secrets" / "generate.sh").read_text())
    first = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True)
    values = {p.name: p.read_text() for p in tmp_path.iterdir() if p.name != "generate.sh"}
    assert len(values) == 11, first.stdout
    assert all(len(v.strip()) >= 8 for v in values.values())
    assert len({v for k, v in values.items() if k != "minio_root_user"}) == 10, "values repeat"
    subprocess.run(["bash", str(script)], capture_output=True, check=True)
    assert {p.name: p.read_text() for p in tmp_path.iterdir() if p.name in values} == values
    subprocess.run(["bash", str(script), "--rotate", "receiver_token"], check=True,
                   capture_output=True)
    assert (tmp_path / "receiver_token").read_text() != values["receiver_token"]
    assert (tmp_path / "pseudonym_key").read_text() == values["pseudonym_key"]
    bad = subprocess.run(["bash", str(script), "--rotate", "nope"], capture_output=True)
    assert bad.returncode == 2
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"


def test_generated_users_file_lets_its_admin_in(tmp_path: Path) -> None:
    """The starter users file loads in the dashboard, and the printed password logs in."""
    from dashboard.users import parse_users

    script = tmp_path / "generate.sh"
    script.write_text((INFRA / "secrets" / "generate.sh").read_text())
    out = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True).stdout
    password = re.search(r"user admin \(operator\): password (\w+)", out)
    assert password, out
    text = (tmp_path / "dashboard_users").read_text()
    assert password.group(1) not in text, "only the hash is stored"
    users = parse_users(text)
    admin = users.authenticate("admin", password.group(1))
    assert admin is not None and admin.is_operator and admin.may_upload("any-dataset")
    assert users.authenticate("admin", "wrong") is None


# --------------------------------------------------------------------------- ports, networks


def _published(svc: dict[str, Any]) -> list[tuple[str, str, str]]:
    out = []
    for port in svc.get("ports") or []:
        assert isinstance(port, str), "use the short syntax HOST_IP:HOST_PORT:CONTAINER_PORT"
        parts = interpolate(port).split(":")
        assert len(parts) == 3, f"{port}: bind to an explicit host address"
        out.append((parts[0], parts[1], parts[2]))
    return out


def test_ports_bind_to_loopback_by_default(services: dict[str, Any]) -> None:
    published = {name: _published(svc) for name, svc in services.items()}
    for name, ports in published.items():
        for host_ip, _, _ in ports:
            assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip} by default"
    for internal in ("postgres", "receiver", "pipeline", "store-migrate", "minio-setup",
                     "s3-upload", "worker"):
        assert not published[internal], f"{internal} must not publish ports"
    assert {p[2] for p in published["dashboard"]} == {"8050"}
    assert {p[2] for p in published["prefect-server"]} == {"4200"}


def test_internal_networks_and_private_edges(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    nets = compose["networks"]
    for net in ("objects", "orchestration", "prefect-db", "store-write", "store-read", "uploads"):
        assert nets[net].get("internal") is True, f"network {net} must be internal"
    edge_users: dict[str, list[str]] = {}
    for name, svc in services.items():
        for net in networks_of(svc):
            assert net in nets, f"{name} joins undeclared network {net}"
            if not (nets[net] or {}).get("internal"):
                edge_users.setdefault(net, []).append(name)
        if svc.get("ports"):
            edges = [n for n in networks_of(svc) if not (nets[n] or {}).get("internal")]
            assert len(edges) == 1, f"{name} publishes ports: give it exactly one edge network"
    shared = {net: users for net, users in edge_users.items() if len(users) > 1}
    assert not shared, f"services meet on an edge network: {shared}"


def _neighbours(services: dict[str, Any], name: str) -> set[str]:
    nets = networks_of(services[name])
    return {n for n, s in services.items() if n != name and networks_of(s) & nets}


def test_postgres_is_reachable_only_by_its_clients(services: dict[str, Any]) -> None:
    clients = _neighbours(services, "postgres")
    assert clients <= {"prefect-server", "pipeline", "worker", "store-migrate", "dashboard"}
    assert "receiver" not in clients and "minio" not in clients


def test_prefect_api_is_reachable_only_by_prefect_clients(services: dict[str, Any]) -> None:
    """The Prefect API has no login: only the processes that run or start flows reach it."""
    clients = _neighbours(services, "prefect-server") - {"postgres"}
    assert clients <= {"pipeline", "worker", "receiver", "deploy-workpool"}, clients
    assert "dashboard" not in clients


def test_pipeline_scales_out(services: dict[str, Any]) -> None:
    replicas = services["pipeline"]["deploy"]["replicas"]
    assert interpolate(str(replicas), {"PIPELINE_REPLICAS": "3"}) == "3"
    assert interpolate(str(replicas)) == "1"
    assert "container_name" not in services["pipeline"], "a fixed container name cannot scale"
    assert not services["pipeline"].get("ports"), "replicas cannot share a published port"


def test_env_example_names_only_compose_variables(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", (INFRA / "compose.yaml").read_text()))
    example = {
        line.split("=", 1)[0]
        for line in (INFRA / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert example <= used, f".env.example sets variables compose never reads: {example - used}"
    assert not any(SECRET_WORDS.search(k) for k in example), "no secrets in .env.example"
    assert not {k for k in used if k.startswith("PA_")}, "host variables must not be PA_ settings"


def test_readme_documents_every_service_and_secret(compose: dict[str, Any]) -> None:
    readme = (INFRA / "README.md").read_text()
    for name in compose["services"]:
        assert f"`{name}`" in readme, f"infra/README.md does not mention service {name}"
    for name in compose["secrets"]:
        assert f"`{name}`" in readme, f"infra/README.md does not mention secret {name}"
