"""Per-dataset concurrency limits (flows/concurrency.py) against a real Prefect server.

The requeue of a deployment run (AwaitingConcurrencySlot) and the wake-up of the next waiting
run are exercised end to end by the chaos system test (tests/integration/test_chaos.py)."""

from __future__ import annotations

import uuid
from uuid import UUID

import pytest

from flows.concurrency import BUSY, acquire, dataset_slot, ensure_limit, limit_name, release
from flows.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def dataset(prefect_server: str) -> str:
    return f"itest{uuid.uuid4().hex[:8]}"


def _limit(name: str) -> object:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def test_the_limit_is_created_once_and_then_left_to_operators(dataset: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    ensure_limit(dataset, 2)
    assert _limit(limit_name(dataset)).limit == 2  # type: ignore[attr-defined]
    with get_client(sync_client=True) as client:  # an operator raises it in the UI
        client.update_global_concurrency_limit(limit_name(dataset),
                                               GlobalConcurrencyLimitUpdate(limit=5))
    ensure_limit(dataset, 2)
    assert _limit(limit_name(dataset)).limit == 5  # type: ignore[attr-defined]


def test_a_taken_slot_makes_the_next_run_wait(dataset: str) -> None:
    name = limit_name(dataset)
    assert acquire(name, 0.5) is None, "no limit yet: nothing to hold"
    ensure_limit(dataset, 1)
    first = acquire(name, 0.5)
    assert isinstance(first, UUID)
    assert acquire(name, 0.5) is BUSY
    assert _limit(name).active_slots == 1  # type: ignore[attr-defined]
    release(first)
    second = acquire(name, 0.5)
    assert isinstance(second, UUID)
    release(second)
    assert _limit(name).active_slots == 0  # type: ignore[attr-defined]


def test_a_limit_of_zero_pauses_the_dataset(dataset: str) -> None:
    ensure_limit(dataset, 0)
    assert acquire(limit_name(dataset), 0.5) is BUSY


def test_an_ad_hoc_run_holds_a_slot_and_releases_it(dataset: str) -> None:
    name = limit_name(dataset)
    settings = Settings(dataset_run_limit=1)
    with dataset_slot(settings, dataset):
        assert _limit(name).active_slots == 1  # type: ignore[attr-defined]
        assert acquire(name, 0.5) is BUSY
    assert _limit(name).active_slots == 0  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="boom"), dataset_slot(settings, dataset):
        raise ValueError("boom")  # the run's own error passes through; the slot is released
    assert _limit(name).active_slots == 0  # type: ignore[attr-defined]


def test_no_limit_when_switched_off(dataset: str) -> None:
    with dataset_slot(Settings(dataset_run_limit=0), dataset):
        pass
    from prefect.exceptions import ObjectNotFound

    with pytest.raises(ObjectNotFound):
        _limit(limit_name(dataset))
