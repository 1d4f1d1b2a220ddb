"""Per-dataset concurrency, the Prefect way: one global concurrency limit per dataset.

A `process-object` run holds one slot of the limit ``pa-dataset-<dataset>`` while it works
(``PA_DATASET_RUN_LIMIT`` slots, 1 by default), so a burst into one dataset neither piles up
on the dataset's ledger row lock (``reserve``/``publish`` lock it) nor reserves budget for
dozens of runs at once, and duplicates of one object run one after the other.

A run that finds every slot taken waits up to ``WAIT_SECONDS`` inside the run, then gives its
worker back: it tags itself ``pa-dataset:<dataset>`` and moves itself to
``AwaitingConcurrencySlot`` (the scheduled state Prefect uses for deployment concurrency
limits) ``REQUEUE_SECONDS`` later. A run that releases a slot wakes the dataset's next waiting
run (reschedules it to now), so a freed slot does not sit idle until a timer fires; the timer
is the fallback for a holder that died. So a dataset's backlog queues in Prefect, visibly
(flow runs list, filter by the tag; Concurrency page), and never occupies the workers that
other datasets' runs need: one dataset's burst does not starve the others. Ad-hoc runs
(``privacy-analytics process``, no deployment) just wait.

Slots are leases (``LEASE_SECONDS``, renewed while the run lives): the slot of a run killed
with its worker comes back within about a minute, by Prefect's repossessor. The leases live
on the Prefect server; they survive a server restart only with a persistent lease storage
(``PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE``, infra/prefect/README.md).

The limit shapes throughput; it is not what keeps the budget safe. The ledger is (invariant
3): a slot lost during a server restart can let two runs of a dataset overlap, and the
ledger's row lock and reservations still serialise their spending.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from flows.keys import parse_landing_key
from flows.settings import Settings
from privacy.errors import InvalidKey

log = logging.getLogger("privacy_analytics.concurrency")

LIMIT_PREFIX = "pa-dataset-"
TAG_PREFIX = "pa-dataset:"
#: Prefect's shortest lease: a dead run's slot is repossessed within a minute (+ its 15 s loop)
LEASE_SECONDS = 60.0
#: how long a run waits for a slot while holding its worker (then it requeues)
WAIT_SECONDS = 2.0
#: longest pause between two tries while waiting
POLL_SECONDS = 2.0
#: then it is scheduled again this far ahead (jittered), unless a releasing run wakes it
REQUEUE_SECONDS = (30.0, 60.0)
#: a runner fetches runs this long before they are due (Prefect's Runner default): runs due
#: sooner may be starting already and are not woken
PREFETCH_SECONDS = 10.0


def limit_name(dataset: str) -> str:
    return f"{LIMIT_PREFIX}{dataset}"


def tag(dataset: str) -> str:
    return f"{TAG_PREFIX}{dataset}"


def dataset_of(key: str) -> str | None:
    """The dataset of a landing key, or None for a key the flow will refuse anyway."""
    try:
        return parse_landing_key(key).dataset
    except InvalidKey:
        return None


def ensure_limit(dataset: str, slots: int) -> None:
    """Create the dataset's limit with ``slots`` slots if it does not exist; an existing one
    is left as it is (operators change it in the Prefect UI)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = limit_name(dataset)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots, active=True)
                )
                log.info("created the concurrency limit %s with %d slot(s)", name, slots)
            except ObjectAlreadyExists:  # another run created it meanwhile
                pass


def _requeue(dataset: str) -> None:
    """Move the current deployment run to ``AwaitingConcurrencySlot`` and leave the worker
    (raises Prefect's ``Pause``). Returns when there is nothing to requeue (an ad-hoc run) or
    the server refused the state."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.context import FlowRunContext
    from prefect.exceptions import Pause
    from prefect.states import AwaitingConcurrencySlot

    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx is not None else None
    if run is None or run.deployment_id is None:
        return
    when = datetime.now(UTC) + timedelta(seconds=random.uniform(*REQUEUE_SECONDS))
    state = AwaitingConcurrencySlot(
        scheduled_time=when,
        message=f"every slot of the concurrency limit {limit_name(dataset)} is taken; "
        "this run starts again when one is free",
    )
    with get_client(sync_client=True) as client:
        if tag(dataset) not in (run.tags or []):  # what wake_next looks for
            client.update_flow_run(run.id, tags=[*(run.tags or []), tag(dataset)])
        result = client.set_flow_run_state(run.id, state)
    if result.status == SetStateStatus.ACCEPT and result.state is not None:
        raise Pause(state=result.state)


def wake_next(dataset: str) -> bool:
    """Reschedule the dataset's next waiting run to now (after this run released its slot).
    Only runs due later than a runner's prefetch are touched: nobody is starting them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateName,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.states import AwaitingConcurrencySlot

    now = datetime.now(UTC)
    waiting = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[tag(dataset)]),
        state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["AwaitingConcurrencySlot"])),
        next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
            after_=now + timedelta(seconds=PREFETCH_SECONDS + 2)
        ),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=waiting, sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC, limit=1
        )
        if not runs:
            return False
        client.set_flow_run_state(
            runs[0].id,
            AwaitingConcurrencySlot(
                scheduled_time=now,
                message=f"a slot of the concurrency limit {limit_name(dataset)} is free",
            ),
            force=True,
        )
    return True


class _Busy:
    """Every slot stayed taken for the whole wait."""


BUSY = _Busy()


def _holder() -> Any:
    from prefect.client.schemas.objects import ConcurrencyLeaseHolder
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    run = ctx.flow_run if ctx is not None else None
    return ConcurrencyLeaseHolder(type="flow_run", id=run.id) if run is not None else None


def acquire(name: str, wait: float | None) -> UUID | _Busy | None:
    """One slot of the limit ``name`` with a lease: the lease id, None if the limit does not
    exist or is inactive (nothing to hold), or BUSY after ``wait`` seconds (None: wait as
    long as it takes). Polls the server, which answers 423 with a Retry-After while the slots
    are taken, and 422 while the limit is 0 (an operator paused the dataset)."""
    import httpx
    from prefect.client.orchestration import get_client

    deadline = None if wait is None else time.monotonic() + wait
    holder = _holder()
    with get_client(sync_client=True) as client:
        while True:
            try:
                response = client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS,
                    holder=holder,
                )
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code == 422:  # the limit is 0: the dataset is paused
                    if deadline is None:
                        time.sleep(POLL_SECONDS * 5)
                        continue
                    return BUSY
                if exc.response.status_code != 423:
                    raise
                pause = min(float(exc.response.headers.get("Retry-After") or 1.0), POLL_SECONDS)
                if deadline is not None and time.monotonic() + pause > deadline:
                    return BUSY
                time.sleep(pause)
                continue
            body = response.json()
            return UUID(body["lease_id"]) if body.get("limits") else None


@contextmanager
def _renewed(lease_id: UUID) -> Iterator[None]:
    """Renew the lease every half lease while the run works (a server restart in between is
    survived: one renewal may fail)."""
    from prefect.client.orchestration import get_client

    stop = threading.Event()

    def renew() -> None:
        with get_client(sync_client=True) as client:
            while not stop.wait(LEASE_SECONDS / 2):
                try:
                    client.renew_concurrency_lease(lease_id, LEASE_SECONDS)
                except Exception as exc:  # noqa: BLE001 - the server may be restarting
                    log.warning("could not renew concurrency lease %s (%s)", lease_id,
                                type(exc).__name__)

    thread = threading.Thread(target=renew, name="pa-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def release(lease_id: UUID) -> None:
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.release_concurrency_slots_with_lease(lease_id)
    except Exception as exc:  # noqa: BLE001 - the lease then expires within LEASE_SECONDS
        log.warning("could not release concurrency lease %s (%s); it expires by itself",
                    lease_id, type(exc).__name__)


@contextmanager
def dataset_slot(settings: Settings, dataset: str | None) -> Iterator[None]:
    """Hold one slot of the dataset's concurrency limit around a run's work (see above).

    Problems with the concurrency API itself (the server unreachable at that moment) do not
    fail the run: it proceeds without a slot and the ledger keeps the budget safe."""
    if dataset is None or settings.dataset_run_limit == 0:
        yield
        return
    name = limit_name(dataset)
    try:
        lease = acquire(name, WAIT_SECONDS)
        if lease is None:  # no such limit (or it is switched off): create it when missing
            ensure_limit(dataset, settings.dataset_run_limit)
            lease = acquire(name, WAIT_SECONDS)
        if lease is BUSY:
            _requeue(dataset)  # leaves the worker (Prefect's Pause) when it can
            log.info("waiting for a slot of %s (this run cannot be requeued)", name)
            lease = acquire(name, None)
    except Exception as exc:  # noqa: BLE001 - the slot's API calls only; the run has not begun
        log.warning("concurrency limit %s unavailable (%s); running without a slot", name,
                    type(exc).__name__)
        lease = None
    if not isinstance(lease, UUID):
        yield
        return
    try:
        with _renewed(lease):
            yield
    finally:
        release(lease)
        try:
            wake_next(dataset)
        except Exception as exc:  # noqa: BLE001 - the waiting run's own timer wakes it anyway
            log.warning("could not wake the next run of %s (%s)", dataset, type(exc).__name__)
