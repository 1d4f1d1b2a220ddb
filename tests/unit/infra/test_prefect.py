"""The work-pool option (infra/prefect/prefect.yaml) deploys what `flows.serve` serves.

The deployments `flows.serve` builds are the reference: same names, entrypoints, trigger
(event, match, parameters) and sweep interval, so switching from served deployments to a
process work pool changes where runs execute, not what starts them.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.settings import Settings
from tests.unit.infra.conftest import INFRA, ROOT, env_of

PREFECT_YAML = INFRA / "prefect" / "prefect.yaml"


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return yaml.safe_load(PREFECT_YAML.read_text())


@pytest.fixture(scope="module")
def served() -> dict[str, dict[str, Any]]:
    """The deployments `python -m flows.serve` registers (``Runner.add_flow`` arguments)."""
    from flows.serve import deployment_specs

    return {spec["name"]: spec for spec in deployment_specs(Settings(event_namespace="pa"))}


def entrypoint_of(flow: Any) -> str:
    """How Prefect names a flow's entrypoint: file relative to the project, then function."""
    source = Path(inspect.getsourcefile(flow.fn) or "").resolve()
    return f"{source.relative_to(ROOT).as_posix()}:{flow.fn.__name__}"


def by_name(project: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in project["deployments"]}


def test_same_deployments_and_entrypoints(project: dict[str, Any], served: dict[str, Any]) -> None:
    mine = by_name(project)
    assert set(mine) == set(served)
    for name, spec in served.items():
        assert mine[name]["entrypoint"] == entrypoint_of(spec["flow"]), name
        assert (ROOT / mine[name]["entrypoint"].split(":")[0]).is_file()
        assert mine[name]["work_pool"]["name"] == "pa-process"


def test_trigger_is_the_served_one(project: dict[str, Any], served: dict[str, Any]) -> None:
    from prefect.events import DeploymentEventTrigger

    (trigger,) = by_name(project)["process-object"]["triggers"]
    assert trigger.pop("type") == "event"
    mine = DeploymentEventTrigger(**trigger)
    (theirs,) = served["process-object"]["triggers"]
    for field in ("expect", "match", "parameters", "posture", "threshold", "within", "enabled"):
        assert getattr(mine, field) == getattr(theirs, field), field


def test_sweep_interval_is_the_default_one(project: dict[str, Any], served: dict[str, Any]) -> None:
    (schedule,) = by_name(project)["sweep-landing"]["schedules"]
    assert schedule["interval"] == Settings().sweep_interval_seconds
    assert served["sweep-landing"]["interval"].total_seconds() == schedule["interval"]
    for name, spec in served.items():
        assert by_name(project)[name]["description"] == spec["description"], name
        assert by_name(project)[name]["tags"] == spec["tags"], name


def test_one_sweep_at_a_time_in_both_options(project: dict[str, Any], served: dict[str, Any]) -> None:
    """Overlapping sweeps would each start a run per unprocessed object."""
    mine = ConcurrencyLimitConfig(**by_name(project)["sweep-landing"]["concurrency_limit"])
    assert mine == served["sweep-landing"]["concurrency_limit"]
    assert mine.limit == 1 and mine.collision_strategy == ConcurrencyLimitStrategy.CANCEL_NEW
    assert "concurrency_limit" not in served["process-object"]  # per dataset instead


def test_code_comes_from_the_image(project: dict[str, Any]) -> None:
    assert project["pull"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/app"}}
    ]
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert "WORKDIR /app" in dockerfile and "COPY . /app" in dockerfile


def test_compose_worker_polls_the_pool_the_deployments_use(
    project: dict[str, Any], services: dict[str, Any]
) -> None:
    worker = services["worker"]
    cmd = worker["command"]
    assert cmd[:3] == ["prefect", "worker", "start"]
    assert cmd[cmd.index("--pool") + 1] == "pa-process"
    assert cmd[cmd.index("--type") + 1] == "process"
    assert "--with-healthcheck" in cmd
    assert worker["profiles"] == ["workpool"]
    deploy = " ".join(services["deploy-workpool"]["command"])
    assert "work-pool create pa-process --type process" in deploy
    assert "deploy --all --prefect-file /app/infra/prefect/prefect.yaml" in deploy
    env = env_of(worker)
    pipe = env_of(services["pipeline"])
    for var in ("PA_S3_ENDPOINT", "PA_STORE_URL", "PA_PSEUDONYM_KEY_FILE", "PREFECT_API_URL"):
        assert env[var] == pipe[var], f"the worker's {var} differs from the pipeline's"


def test_readme_documents_the_work_pool_option() -> None:
    text = (INFRA / "prefect" / "README.md").read_text()
    for needed in ("prefect worker start --pool pa-process", "PREFECT_API_URL",
                   "PREFECT_SERVER_ANALYTICS_ENABLED=false", "serve"):
        assert needed in text, needed
