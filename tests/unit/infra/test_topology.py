"""The one-machine topology (flows/topology.py) runs what infra/compose.yaml deploys.

Every process of the topology names its compose service; it gets exactly that service's
variables (the same names, ``*_FILE`` secrets included), through the image's entrypoint, and
the same values wherever a value is not an address, a port or a container path. A plan with
compose's defaults reproduces compose's tuning too. Compose services the topology does not run
are listed, with a reason, in ``flows.topology_services.NOT_RUN``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.topology_services import ENTRYPOINT, IMAGE_ENV, NOT_RUN, Plan, ProcessSpec, specs
from tests.unit.infra.conftest import INFRA, env_of, interpolate

#: compose service names, as hosts in compose values: addresses differ on one machine
HOSTS = re.compile(r"(^|[/@])(minio|postgres|prefect-server|receiver|s3-upload)(:|$)")


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return Plan.local(tmp_path_factory.mktemp("topology"), workers=3)


@pytest.fixture(scope="module")
def topology(plan: Plan) -> list[ProcessSpec]:
    return specs(plan)


def _comparable(var: str, compose_value: str) -> bool:
    """Values that must be the same on one machine: not an address, port or container path."""
    value = interpolate(compose_value)
    return not (
        var.endswith("_PORT")
        or HOSTS.search(value)
        or "127.0.0.1:" in value
        or value == "0.0.0.0"
        or value.startswith("/")
    )


def test_every_process_is_a_compose_service(
    topology: list[ProcessSpec], services: dict[str, Any]
) -> None:
    for spec in topology:
        assert spec.service in services, f"{spec.name}: no compose service {spec.service}"
    run = {s.service for s in topology} | {"postgres"}  # postgres: flows/pgcluster.py
    assert set(services) - run == set(NOT_RUN), "explain every compose service not run in NOT_RUN"
    assert not set(NOT_RUN) & run


def test_each_process_gets_exactly_its_service_s_variables(
    topology: list[ProcessSpec], services: dict[str, Any]
) -> None:
    for spec in topology:
        compose = set(env_of(services[spec.service]))
        mine = set(spec.env)
        assert mine == compose, (
            f"{spec.name} ({spec.service}): only in the topology {sorted(mine - compose)}, "
            f"only in compose {sorted(compose - mine)}"
        )


def test_values_are_compose_s_except_addresses_ports_and_paths(
    topology: list[ProcessSpec], services: dict[str, Any]
) -> None:
    # a plan with compose's defaults: one replica, PIPELINE_RUN_LIMIT 4, the 300 s sweep, ...
    pipeline = env_of(services["pipeline"])
    defaults = Plan.local(
        Path("/nonexistent"),
        workers=1,
        run_limit=int(interpolate(pipeline["PA_RUN_LIMIT"])),
        dataset_run_limit=int(interpolate(pipeline["PA_DATASET_RUN_LIMIT"])),
        sweep_interval_seconds=int(interpolate(pipeline["PA_SWEEP_INTERVAL_SECONDS"])),
        reservation_timeout_seconds=int(pipeline["PA_RESERVATION_TIMEOUT_SECONDS"]),
        heartbeat_seconds=int(pipeline["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]),
    )
    compared = 0
    for spec in specs(defaults):
        compose = env_of(services[spec.service])
        for var, raw in compose.items():
            if var.endswith("_FILE") or not _comparable(var, raw):
                continue
            assert spec.env[var] == interpolate(raw), f"{spec.name}: {var}"
            compared += 1
    assert compared > 40  # not vacuous


def test_secrets_are_the_service_s_own(
    plan: Plan, topology: list[ProcessSpec], services: dict[str, Any]
) -> None:
    for spec in topology:
        mounted = set(services[spec.service].get("secrets") or [])
        for var, value in spec.env.items():
            if var.endswith("_FILE"):
                path = Path(value)
                assert path.parent == plan.secrets, f"{spec.name}: {var}={value}"
                assert path.name in mounted, f"{spec.name} reads {path.name}; compose gives it not"


def test_commands_are_compose_s(topology: list[ProcessSpec], services: dict[str, Any]) -> None:
    by_name = {s.name: s for s in topology}

    def python_argv(command: list[str]) -> list[str]:
        assert command[0] in ("python", "prefect"), command
        head = [sys.executable] if command[0] == "python" else [sys.executable, "-m", "prefect"]
        return [*head, *command[1:]]

    for name in ("receiver", "pipeline-1", "pipeline-3", "dashboard"):
        spec = by_name[name]
        assert spec.argv == python_argv(services[spec.service]["command"]), name
    migrate = services["store-migrate"]["command"]
    assert by_name["store-migrate"].argv[:2] == [sys.executable, "-c"]
    assert " ".join(by_name["store-migrate"].argv[2].split()) == " ".join(migrate[2].split())
    server = services["prefect-server"]["command"]
    mine = by_name["prefect-server"].argv
    assert mine[:5] == python_argv(server)[:5] and "--analytics-off" in mine
    assert "--no-services" not in mine, "event triggers need the server's services"


def test_replicas_and_health_ports(plan: Plan, topology: list[ProcessSpec]) -> None:
    workers = [s for s in topology if s.service == "pipeline"]
    assert [w.name for w in workers] == ["pipeline-1", "pipeline-2", "pipeline-3"]
    ports = {w.env["PREFECT_RUNNER_SERVER_PORT"] for w in workers}
    assert len(ports) == 3
    for w in workers:
        assert w.ready == f"http://127.0.0.1:{w.env['PREFECT_RUNNER_SERVER_PORT']}/health"


def test_image_env_is_the_dockerfile_s(topology: list[ProcessSpec]) -> None:
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(dict(re.findall(r"([A-Z_]+)=(\S+)", line)))
    assert IMAGE_ENV.items() <= env.items()
    for spec in topology:
        if spec.image_env:
            assert set(spec.image_env) <= set(env), spec.name
            for var in ("PA_STATE_DIR", "PREFECT_HOME"):  # per process, as per container
                assert spec.name in spec.image_env[var], spec.name
    assert ENTRYPOINT.is_file()


def _resolved(spec: ProcessSpec, tmp_path: Path) -> dict[str, str]:
    """The environment after the image's entrypoint, with stand-in secret files."""
    out: dict[str, str] = {}
    for var, value in {**spec.image_env, **spec.env}.items():
        if var.endswith("_FILE") and var.startswith(("PA_", "PREFECT_", "PG")):
            out[var.removesuffix("_FILE")] = f"stand-in-{Path(value).name}".ljust(40, "x")
        else:
            out[var] = value
    return out


@pytest.mark.parametrize("name", ["pipeline-2", "receiver", "store-migrate"])
def test_pipeline_settings_load_from_the_topology_environment(
    topology: list[ProcessSpec], name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    from flows.settings import Settings

    for var in [v for v in os.environ if v.startswith("PA_")]:
        monkeypatch.delenv(var)
    spec = next(s for s in topology if s.name == name)
    for var, value in _resolved(spec, tmp_path).items():
        monkeypatch.setenv(var, value)
    settings = Settings()
    settings.check_s3()
    if name != "receiver":
        url = make_url(settings.aggregate_store_url)
        assert (url.username, url.database, url.password) == ("pa_writer", "aggregates", None)
    if name == "pipeline-2":
        assert settings.uses_s3 and settings.pseudonym_key_bytes()
        assert settings.dataset_run_limit >= 1


def test_dashboard_reads_with_the_reader_role(
    topology: list[ProcessSpec], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    from dashboard.settings import DashboardSettings

    for var in [v for v in os.environ if v.startswith("PA_")]:
        monkeypatch.delenv(var)
    spec = next(s for s in topology if s.name == "dashboard")
    env = _resolved(spec, tmp_path)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("PA_DASHBOARD_USERS", "users: []\n")  # the users file, as YAML
    settings = DashboardSettings()
    url = make_url(settings.aggregate_store_url)
    assert (url.username, url.password) == ("pa_reader", None)
    assert not any(v.startswith(("PA_S3_", "PA_STORE_URL", "PA_PSEUDONYM")) for v in spec.env)
