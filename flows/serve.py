"""Serve the deployments: `process-object` (event-triggered), `sweep-landing` (scheduled) and
`release-dataset` (on each contract's ``release.schedule``, and on demand).

All three appear in the Prefect UI, where they can be run or scheduled by hand.

Flow runs start in fresh processes. Importing the pipeline (Great Expectations above all)
takes several seconds, so runs are forked from a pre-warmed fork server that imported it
once (``PA_WARM_START=false`` turns this off and uses Prefect's default spawn).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from datetime import timedelta
from typing import Any

from prefect.events import DeploymentEventTrigger
from prefect.runner import Runner
from prefect.schedules import Cron, Schedule

from flows.crashes import aensure_crash_detection
from flows.process_object import FLOW_NAME, process_object
from flows.release_dataset import FLOW_NAME as DATASET_FLOW
from flows.release_dataset import release_dataset
from flows.settings import Settings
from flows.sweep import ONE_AT_A_TIME, sweep_landing
from privacy.errors import PipelineError

log = logging.getLogger("privacy_analytics.serve")

#: modules the fork server imports once, so every flow run starts warm
WARM_MODULES = [
    "flows.process_object",
    "flows.sweep",
    "flows.release_dataset",
    "analytics.analyses",
    "analytics.store",
    "privacy.masking",
    "privacy.validation",
    "opendp.prelude",  # imports OpenDP's extras (several seconds): do it once, not per run
]


def object_trigger(namespace: str) -> DeploymentEventTrigger:
    return DeploymentEventTrigger(
        name="object-created",
        description="one flow run per object dropped into landing/",
        expect={f"{namespace}.object.created"},
        match={"prefect.resource.id": f"{namespace}.object.*"},
        parameters={
            "bucket": "{{ event.resource.bucket }}",
            "key": "{{ event.resource.key }}",
            "etag": "{{ event.payload.etag }}",
        },
    )


def dataset_schedules(settings: Settings) -> list[Schedule]:
    """One cron schedule per contract with ``release.schedule`` (UTC), its parameters
    naming the dataset. A contract that does not load is skipped with a warning (its
    files are quarantined with the reason)."""
    from privacy.contract import load_contract
    from privacy.errors import ContractError

    out: list[Schedule] = []
    folder = settings.contracts_dir
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            contract = load_contract(path, path.stem)
        except ContractError as exc:
            log.warning("contract %s not scheduled: %s", path.name, exc)
            continue
        if contract.release.schedule:
            out.append(Cron(contract.release.schedule.strip(), timezone="UTC",
                            parameters={"dataset": contract.dataset},
                            slug=f"release-{contract.dataset.lower()}"[:64]))
    return out


def deployment_specs(settings: Settings) -> list[dict[str, Any]]:
    """The three deployments: keyword arguments for ``Runner.add_flow``."""
    return [
        {
            "flow": process_object,
            "name": FLOW_NAME,
            "triggers": [object_trigger(settings.event_namespace)],
            "description": "Validate, mask and release one object; started by object events.",
            "tags": ["privacy-analytics"],
        },
        {
            "flow": sweep_landing,
            "name": "sweep-landing",
            "interval": timedelta(seconds=settings.sweep_interval_seconds),
            "concurrency_limit": ONE_AT_A_TIME,
            "description": "Start runs for objects in landing/ that were never processed.",
            "tags": ["privacy-analytics"],
        },
        {
            "flow": release_dataset,
            "name": DATASET_FLOW,
            "schedules": dataset_schedules(settings),
            "description": "Release a dataset's analyses over all its files so far (or its "
            "latest snapshot); scheduled by each contract's release.schedule, or run with a "
            "dataset name.",
            "tags": ["privacy-analytics"],
        },
    ]


async def serve_deployments(settings: Settings) -> None:
    """Register the deployments with an in-process Runner and execute their runs.

    ``Runner.add_flow`` (unlike ``serve(*deployments)``) keeps the flow object, so each run
    starts as a direct child of this process (no ``python -m prefect.engine`` re-import)."""
    runner = Runner(name="privacy-analytics", limit=settings.run_limit, pause_on_shutdown=False)
    for spec in deployment_specs(settings):
        await runner.aadd_flow(**spec)
    try:  # runs whose worker dies become Crashed (flows/crashes.py)
        await aensure_crash_detection()
    except Exception:
        log.warning("could not set up crashed-run detection", exc_info=True)
    await runner.start()


class _WarmContext:
    """Stands in for ``multiprocessing`` inside Prefect's flow engine: returns a fork-server
    context with the pipeline preloaded whenever Prefect asks for 'spawn'."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(WARM_MODULES)

    def get_context(self, method: str | None = None) -> Any:
        if method == "spawn":
            return self._ctx
        return multiprocessing.get_context(method)

    def __getattr__(self, name: str) -> Any:
        return getattr(multiprocessing, name)


def enable_warm_start() -> bool:
    import prefect.flow_engine as engine

    if getattr(engine, "multiprocessing", None) is not multiprocessing:
        log.warning("this Prefect version has no patch point for warm starts; using spawn")
        return False
    engine.multiprocessing = _WarmContext()  # type: ignore[assignment]
    return True


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s serve %(levelname)s %(message)s"
    )
    try:
        settings.pseudonym_key_bytes()  # a short or exposed key stops the worker at start-up
    except PipelineError as exc:
        log.error("%s", exc)
        raise SystemExit(2) from None
    if settings.warm_start and enable_warm_start():
        # start the fork server (it imports WARM_MODULES) now, not when the first run arrives
        from multiprocessing import forkserver

        forkserver.ensure_running()
    try:
        asyncio.run(serve_deployments(settings))
    except KeyboardInterrupt:
        log.info("stopped")


if __name__ == "__main__":
    main()
