"""Crashed-run detection: a run whose worker died stops sending heartbeats; Prefect marks it
`Crashed`.

A flow run's engine emits ``prefect.flow-run.heartbeat`` every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
seconds while its process lives. When a worker is killed (SIGKILL, a lost host, an OOM kill)
nobody reports the end of its runs: they would show `Running` forever. Prefect's answer is a
proactive automation (the "zombie flow runs" recipe of Prefect's docs): after a heartbeat,
expect another heartbeat or a state change within three heartbeat periods, else change the
run's state to `Crashed`. `flows.serve` creates it once per Prefect server (by name).

Requeued runs (`AwaitingConcurrencySlot`, flows/concurrency.py) stop heartbeating while they
wait; their state change is an expected event, so they are not crashed. Recovery itself does
not depend on this automation: the sweep emits the object of a run that is running for
longer than ``PA_RESERVATION_TIMEOUT_SECONDS`` again (flows/inflight.py), and the killed run's
budget reservation expires without spend.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

log = logging.getLogger("privacy_analytics.crashes")

AUTOMATION_NAME = "pa-crashed-runs"
#: state changes that end a run's heartbeats legitimately
_STATE_EVENTS = (
    "Completed", "Failed", "Cancelled", "Crashed", "Cancelling", "Paused", "Suspended",
    "Scheduled", "AwaitingConcurrencySlot", "AwaitingRetry", "Rejected", "Skipped",
    "BudgetExhausted", "TermsChanged", "TimedOut",
)


def crash_detection(heartbeat_seconds: int) -> Any:
    """The automation, for heartbeats every ``heartbeat_seconds``."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=AUTOMATION_NAME,
        description="Flow runs that stop sending heartbeats (their worker died) become "
        "Crashed; created by privacy-analytics (flows/crashes.py).",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in _STATE_EVENTS)},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=3 * heartbeat_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {3 * heartbeat_seconds} s: the run's worker is "
                "gone. The sweep starts a new run for its object; its budget reservation expires "
                "unspent.",
            )
        ],
    )


async def aensure_crash_detection() -> None:
    """Create the automation unless the server has one of that name (heartbeats on only)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    heartbeat = get_current_settings().flows.heartbeat_frequency
    if not heartbeat:
        log.info("flow heartbeats are off: no crashed-run detection")
        return
    async with get_client() as client:
        existing = await client.read_automations_by_name(AUTOMATION_NAME)
        if not existing:
            await client.create_automation(crash_detection(heartbeat))
            log.info("created the automation %s (heartbeats every %d s)", AUTOMATION_NAME,
                     heartbeat)
            existing = await client.read_automations_by_name(AUTOMATION_NAME)
        # replicas starting together may each have created one: all keep the same one
        for extra in sorted(existing, key=lambda a: str(a.id))[1:]:
            await client.delete_automation(extra.id)
