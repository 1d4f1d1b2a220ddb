"""Objects that already have a `process-object` run on the way, so the sweep leaves them be.

Under a backlog (a burst queued behind the per-dataset concurrency limits) most objects in
landing/ are unpublished *and* already have a scheduled, pending or running flow run. Emitting
an event for each of them every sweep would add a duplicate run per object per sweep; the
sweep skips them instead. A run counts as on its way while it is scheduled (including
``AwaitingConcurrencySlot``), and while it has been pending or running for less than
``PA_RESERVATION_TIMEOUT_SECONDS``: longer than that, it is presumed dead with its worker (its
budget reservation has expired too) and the sweep starts a new run for its object. A run stuck in
pending (its worker died between taking it and starting it: no heartbeat ever comes, so
`pa-crashed-runs` cannot see it) is reported so the sweep can mark it `Crashed`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flows.process_object import FLOW_NAME

PAGE = 200


def inflight_objects(presumed_dead_after: timedelta) -> set[tuple[str, str]]:
    """(key, etag) of every object with a live `process-object` run; etag "" if unknown."""
    return scan_runs(presumed_dead_after)[0]


def scan_runs(presumed_dead_after: timedelta) -> tuple[set[tuple[str, str]], list[Any]]:
    """The objects with a live `process-object` run, and the ids of runs stuck in pending
    for longer than ``presumed_dead_after``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    live = FlowRunFilter(
        state=FlowRunFilterState(
            type=FlowRunFilterStateType(
                any_=[StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING]
            )
        )
    )
    deployment = DeploymentFilter(name=DeploymentFilterName(any_=[FLOW_NAME]))
    dead_before = datetime.now(UTC) - presumed_dead_after
    found: set[tuple[str, str]] = set()
    stuck: list[Any] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=live, deployment_filter=deployment, limit=PAGE, offset=offset
            )
            for run in runs:
                state = run.state
                if state is not None and (state.is_running() or state.is_pending()):
                    since = state.timestamp if state.is_pending() else (
                        run.start_time or state.timestamp)
                    if since is not None and since < dead_before:
                        if state.is_pending():
                            stuck.append(run.id)
                        continue  # presumed dead: the sweep starts a new run for its object
                params: dict[str, Any] = run.parameters or {}
                key = params.get("key")
                if isinstance(key, str):
                    found.add((key, str(params.get("etag") or "")))
            if len(runs) < PAGE:
                return found, stuck
            offset += PAGE


def crash_stuck(run_ids: list[Any], after: timedelta) -> int:
    """Mark runs stuck in pending `Crashed` (their worker died before starting them)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    done = 0
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            result = client.set_flow_run_state(run_id, Crashed(
                message=f"pending for more than {after.total_seconds():.0f} s: the worker that "
                "took this run died before starting it; the sweep starts a new run for its object"))
            done += result.state is not None and result.state.is_crashed()
    return done


def is_inflight(found: set[tuple[str, str]], key: str, etag: str) -> bool:
    return (key, etag) in found or (key, "") in found


def settle_crashed_publishers(find_published: Any, limit: int = PAGE) -> int:
    """Mark `Completed` the recent `Crashed` runs that had published their object before
    their worker died (the aggregate store names them as its publisher): the values, the
    spend and the run record were committed, only the final state never reached Prefect.
    Their object needs no other run, so without this the Prefect UI would show a published
    file with a crashed run only. ``find_published``: ObjectVersion -> publishing run id."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import Completed

    from analytics.store import ObjectVersion

    crashed = FlowRunFilter(state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType.CRASHED])))
    deployment = DeploymentFilter(name=DeploymentFilterName(any_=[FLOW_NAME]))
    done = 0
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=crashed, deployment_filter=deployment,
                                     sort=FlowRunSort.START_TIME_DESC, limit=limit)
        for run in runs:
            p: dict[str, Any] = run.parameters or {}
            if not all(isinstance(p.get(k), str) for k in ("bucket", "key", "etag")):
                continue
            if find_published(ObjectVersion(p["bucket"], p["key"], p["etag"])) != str(run.id):
                continue
            result = client.set_flow_run_state(run.id, Completed(
                message="published before its worker died: the values, the spend and the run "
                "record were committed; only this final state was lost"), force=True)
            done += result.state is not None and result.state.is_completed()
    return done
