"""Meta-test of the served deployments (like Dagster's test_defs): every flow and deployment
imports and resolves, and the event trigger matches what the event sources emit."""

from __future__ import annotations

import inspect
import multiprocessing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import flows.serve as serve
from flows.events import object_event
from flows.objectstore import ObjectInfo
from flows.process_object import process_object
from flows.settings import Settings
from tests.unit.flows.env import drop_pa_env

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    drop_pa_env(monkeypatch)


def _deployments(settings: Settings) -> list[Any]:
    """Resolve the specs the way the runner does, without a server."""
    return [
        spec["flow"].to_deployment(**{k: v for k, v in spec.items() if k != "flow"})
        for spec in serve.deployment_specs(settings)
    ]


def test_specs_are_valid_runner_arguments() -> None:
    from prefect.runner import Runner

    runner = Runner(name="meta-test")
    for spec in serve.deployment_specs(Settings()):
        inspect.signature(Runner.aadd_flow).bind(runner, **spec)  # TypeError if not


def test_deployments_resolve() -> None:
    deps = _deployments(Settings())
    assert [d.name for d in deps] == ["process-object", "sweep-landing", "release-dataset"]
    assert [d.flow_name for d in deps] == ["process-object", "sweep-landing", "release-dataset"]
    for d in deps:
        assert "privacy-analytics" in d.tags
        assert d.description


def test_process_object_is_triggered_by_object_events() -> None:
    process, _, _ = _deployments(Settings(event_namespace="tns"))
    assert process.schedules in (None, [])
    (trigger,) = process.triggers
    assert trigger.expect == {"tns.object.created"}
    assert trigger.match.model_dump() == {"prefect.resource.id": "tns.object.*"}
    assert trigger.parameters == {
        "bucket": "{{ event.resource.bucket }}",
        "key": "{{ event.resource.key }}",
        "etag": "{{ event.payload.etag }}",
    }
    # the trigger's parameters are the flow's: nothing else (no data) goes in
    params = inspect.signature(process_object.fn).parameters
    assert set(trigger.parameters) <= set(params)
    # and every event source's event satisfies it
    ev = object_event(ObjectInfo("bk", "landing/ds/a.csv", "e", 1), "tns", "sweep")
    assert ev.event in trigger.expect
    assert ev.resource.id.startswith(trigger.match.model_dump()["prefect.resource.id"][:-1])
    assert {"bucket", "key"} <= set(ev.resource.root) and "etag" in ev.payload


def test_sweep_runs_on_the_configured_interval() -> None:
    _, sweep, _ = _deployments(Settings(sweep_interval_seconds=42))
    (schedule,) = sweep.schedules
    assert schedule.schedule.interval == timedelta(seconds=42)
    assert not sweep.triggers


def test_flows_do_not_persist_results() -> None:
    from flows.sweep import sweep_landing

    for f in (process_object, sweep_landing):
        assert f.persist_result is False


def test_warm_start_patches_the_flow_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import prefect.flow_engine as engine

    assert engine.multiprocessing is multiprocessing
    monkeypatch.setattr(engine, "multiprocessing", multiprocessing)  # restored afterwards
    assert serve.enable_warm_start() is True
    patched = engine.multiprocessing
    assert patched is not multiprocessing
    ctx = patched.get_context("spawn")
    assert ctx.get_start_method() == "forkserver"
    assert patched.get_context("fork").get_start_method() == "fork"
    assert patched.Queue is multiprocessing.Queue  # everything else passes through
    assert serve.enable_warm_start() is False  # no second patch on top of ours


def test_warm_modules_exist() -> None:
    # a typo here would only show as a silent cold start in the fork server
    import importlib.util

    for name in serve.WARM_MODULES:
        assert importlib.util.find_spec(name) is not None, name


def test_dataset_releases_run_on_each_contracts_schedule(tmp_path: Path) -> None:
    import yaml

    base = yaml.safe_load((ROOT / "contracts" / "employees.yaml").read_text())
    for name, release in (("weekly", {"schedule": "0 6 * * 1"}), ("ondemand", {}),
                          ("everyfive", {"every_files": 5})):
        (tmp_path / f"{name}.yaml").write_text(
            yaml.safe_dump({**base, "dataset": name, "release": release}))
    (tmp_path / "broken.yaml").write_text("dataset: broken\n")  # skipped, not fatal
    deps = {d.name: d for d in _deployments(Settings(contracts_dir=tmp_path))}
    [schedule] = deps["release-dataset"].schedules
    assert schedule.schedule.cron == "0 6 * * 1" and schedule.schedule.timezone == "UTC"
    assert schedule.parameters == {"dataset": "weekly"}
    assert deps["release-dataset"]._parameter_openapi_schema.required == ["dataset"]
