"""The `sweep-landing` flow: the safety net behind every event source.

Lists `landing/` and starts a `process-object` run for each object version not yet
published: files dropped while the watcher or receiver was down, or into an S3 server that
sends no notifications, events the Prefect server lost, runs killed with their worker. It
creates the runs itself rather than emitting events: under a backlog the server turns events
into runs late, and a sweep that cannot see a run yet would send another event per object
per sweep. Duplicates are harmless (a run for a published object version is skipped) but
not free, so an object gets no second run while one for it is queued or running, or
(scheduled sweeps) while it is younger than two sweep intervals (its event may still be on
its way): flows/inflight.py. Published objects whose raw file is still in landing/ (their
run could not remove it) are removed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.context import FlowRunContext
from prefect.deployments import arun_deployment
from prefect.utilities.annotations import quote
from prefect.utilities.asyncutils import run_coro_as_sync

from analytics.store import ObjectVersion
from flows.inflight import crash_stuck, is_inflight, scan_runs, settle_crashed_publishers
from flows.keys import parse_landing_key
from flows.objectstore import ObjectInfo
from flows.process_object import FLOW_NAME as PROCESS
from flows.resources import RunResources
from flows.settings import Settings
from flows.tasks import remove_raw
from privacy.errors import InvalidKey

FLOW_NAME = "sweep-landing"


def scan_landing(res: RunResources) -> tuple[list[ObjectInfo], list[ObjectInfo], int]:
    """landing/: versions not published yet, versions published whose raw file is still
    there (its run could not remove it, e.g. the object store was unreachable), bad keys."""
    todo: list[ObjectInfo] = []
    published: list[ObjectInfo] = []
    bad = 0
    for info in res.objects.list("landing/"):
        try:
            parse_landing_key(info.key)
        except InvalidKey:
            bad += 1
            continue
        obj = ObjectVersion(info.bucket, info.key, info.etag, info.size)
        if res.aggregates.find_published(obj) is None:
            todo.append(info)
        else:
            published.append(info)
    return todo, published, bad


def _scheduled() -> bool:
    """Whether this run was created by the deployment's schedule (not by hand)."""
    ctx = FlowRunContext.get()
    return bool(ctx and ctx.flow_run and ctx.flow_run.auto_scheduled)


@flow(
    name=FLOW_NAME,
    description="Start a process-object run for each unprocessed object in landing/.",
    persist_result=False,
)
def sweep_landing() -> int:
    log = get_run_logger()
    settings = Settings()
    with RunResources(settings) as res:
        todo, published, bad = scan_landing(res)
        if published and not settings.keep_raw:  # data minimisation, when a run could not tidy
            for info in published:
                remove_raw(quote(res), quote(parse_landing_key(info.key)), info.etag)
            log.info("sweep: removed %d published raw file(s) left in landing/", len(published))
        try:  # runs that published, then lost their worker before their final state
            settled = settle_crashed_publishers(res.aggregates.find_published)
        except Exception as exc:  # noqa: BLE001 - bookkeeping of Prefect's view only
            settled = 0
            log.warning("sweep: could not check crashed runs (%s)", type(exc).__name__)
        if settled:
            log.info("sweep: %d crashed run(s) had published their object: marked Completed",
                     settled)
    # objects whose run is queued or running, or whose event may still be on its way, get
    # no second event (flows/inflight.py)
    dead_after = timedelta(seconds=settings.reservation_timeout_seconds)
    busy, stuck = scan_runs(dead_after)
    if stuck:
        log.warning("sweep: %d run(s) stuck in pending marked Crashed",
                    crash_stuck(stuck, dead_after))
    # A scheduled sweep also leaves objects younger than two sweep intervals to their event;
    # a sweep run by hand (Prefect UI, CLI) emits every object that has no run on the way.
    grace = 2 * settings.sweep_interval_seconds if _scheduled() else 0
    fresh = datetime.now(UTC) - timedelta(seconds=grace)
    waiting = [i for i in todo if is_inflight(busy, i.key, i.etag)
               or (grace and i.modified is not None and i.modified > fresh)]
    if waiting:
        log.info("sweep: %d unprocessed object(s) have a run on the way%s", len(waiting),
                 " or are younger than two sweep intervals" if grace else "")
        todo = [i for i in todo if i not in waiting]
    if bad:
        log.warning("%d object(s) in landing/ have keys that are not landing/<dataset>/<file>", bad)
    started = run_coro_as_sync(start_runs(todo, dead_after)) if todo else 0
    log.info("sweep: %d unprocessed object(s) in landing/, %d process-object run(s) created",
             len(todo), started)
    return started


#: one sweep at a time: a sweep that finds another running is cancelled, not queued
ONE_AT_A_TIME = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


async def start_runs(todo: Sequence[ObjectInfo], dead_after: timedelta) -> int:
    """Create a `process-object` run for each object, directly (not through an event): the
    run exists once this returns, so the next sweep sees it on its way. The idempotency key
    allows one sweep-created run per object version per ``dead_after`` window, even when
    two sweeps overlap."""
    window = int(time.time() // max(dead_after.total_seconds(), 1.0))
    n = 0
    async with get_client() as client:
        for info in todo:
            await arun_deployment(  # not run_deployment: in a sync flow it dispatches sync
                f"{PROCESS}/{PROCESS}", client=client, timeout=0, as_subflow=False,
                parameters={"bucket": info.bucket, "key": info.key, "etag": info.etag},
                idempotency_key=f"sweep:{info.bucket}/{info.key}:{info.etag}:{window}",
            )
            n += 1
    return n
