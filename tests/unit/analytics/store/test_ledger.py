"""Ledger acceptance: the budget never goes over its cap, under concurrency and crashes;
exactly-once per object version; ε and δ finite and positive; window policy resets."""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, insert, select

from analytics.store import AggregateStore, ReadOnlyStore, schema
from privacy.budget import PrivacyLoss, zcdp_epsilon
from privacy.errors import BudgetExhausted, PipelineError
from tests.unit.analytics.store.helpers import (
    ZCDP_RHO,
    Clock,
    crash_worker,
    make_contract,
    make_obj,
    make_release_set,
    make_run,
    process_worker,
    release_once,
    values_per_set,
    zcdp_cap_for,
)

N = 8
CAP = 3.0


def _table_counts(url: str) -> dict[str, int]:
    store = AggregateStore(url)
    with store._engine.connect() as conn:
        out = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (schema.releases, schema.published_values, schema.insights,
                      schema.published_objects)
        }
        for name, column in (("committed_eps", schema.ledger.c.epsilon),
                             ("committed_rho", schema.ledger.c.rho),
                             ("committed_delta", schema.ledger.c.delta)):
            out[name] = conn.execute(
                select(func.coalesce(func.sum(column), 0.0)).where(
                    schema.ledger.c.state == "committed"
                )
            ).scalar_one()
    store.close()
    return out


def _assert_cap_held(url: str, outcomes: list[str], accounting: str = "pure") -> None:
    published = outcomes.count("published")
    assert published == int(CAP), outcomes  # exactly as many releases as the cap allows
    assert outcomes.count("exhausted") == N - published
    counts = _table_counts(url)
    assert counts["published_objects"] == published
    assert counts["published_values"] == published * values_per_set()
    b = ReadOnlyStore(url).budget("employees")
    assert b.exhausted and b.releases_remaining == 0 and b.accounting == accounting
    if accounting == "pure":
        assert counts["committed_eps"] <= CAP
        assert b.epsilon_spent == pytest.approx(CAP) and b.epsilon_remaining == 0
        return
    # zCDP: ρ adds up; the ledger's total, converted by OpenDP, stays within the cap
    cap = zcdp_cap_for(int(CAP))
    assert b.rho_spent == pytest.approx(published * ZCDP_RHO)
    assert counts["committed_rho"] == pytest.approx(published * ZCDP_RHO)
    converted = zcdp_epsilon(counts["committed_rho"], 1e-6 - counts["committed_delta"])
    assert converted <= cap and b.epsilon_spent == pytest.approx(converted)
    assert b.epsilon_cap == pytest.approx(cap)


# --------------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("accounting", ["pure", "zcdp"])
def test_eight_concurrent_threads_never_exceed_the_cap(store_url: str, accounting: str) -> None:
    AggregateStore(store_url).close()
    barrier = threading.Barrier(N)
    with ThreadPoolExecutor(N) as pool:  # each thread opens its own store and connections
        outcomes = list(pool.map(
            lambda i: release_once(store_url, CAP, i, barrier, accounting=accounting), range(N)
        ))
    _assert_cap_held(store_url, outcomes, accounting)


def _process_context() -> multiprocessing.context.BaseContext:
    """Fresh processes (no inherited connections or threads), forked from a server that has
    imported the store and OpenDP once, so eight of them start in well under a second."""
    ctx = multiprocessing.get_context("forkserver")
    # OpenDP too (its import takes seconds): the zCDP workers convert ρ with it
    ctx.set_forkserver_preload(["tests.unit.analytics.store.helpers", "opendp.prelude"])
    return ctx


@pytest.mark.parametrize("accounting", ["pure", "zcdp"])
def test_eight_concurrent_processes_never_exceed_the_cap(store_url: str, accounting: str) -> None:
    AggregateStore(store_url).close()
    ctx = _process_context()
    barrier = ctx.Barrier(N)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=process_worker,
                    args=(store_url, CAP, i, barrier, results, accounting))
        for i in range(N)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120)[1] for _ in range(N)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _assert_cap_held(store_url, outcomes, accounting)


def test_the_same_object_version_published_concurrently_publishes_and_spends_once(
    store_url: str,
) -> None:
    AggregateStore(store_url).close()
    barrier = threading.Barrier(N)
    with ThreadPoolExecutor(N) as pool:
        outcomes = list(
            pool.map(
                lambda i: release_once(store_url, 100.0, i, barrier, same_object=True), range(N)
            )
        )
    assert outcomes.count("published") == 1 and outcomes.count("duplicate") == N - 1
    counts = _table_counts(store_url)
    assert counts["committed_eps"] == pytest.approx(1.0)
    assert counts["published_objects"] == 1
    assert counts["published_values"] == values_per_set()
    ro = ReadOnlyStore(store_url)
    states = sorted(e.state for e in ro.ledger("employees"))
    assert states == ["cancelled"] * (N - 1) + ["committed"]
    statuses = sorted(r.status for r in ro.runs())
    assert statuses == ["completed"] + ["duplicate"] * (N - 1)
    dup_reasons = [r.reason or "" for r in ro.runs() if r.status != "completed"]
    assert all("already published" in reason for reason in dup_reasons)


# --------------------------------------------------------------------------- exactly once


def test_publishing_an_object_version_twice_publishes_once_and_spends_once(store_url: str) -> None:
    store = AggregateStore(store_url)
    contract = make_contract(cap=10.0)
    obj = make_obj()
    first = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-1")
    assert store.publish(first, make_release_set(), make_run("run-1", obj)) is True
    # a replayed event: the flow asks first ...
    assert store.find_published(obj) == "run-1"
    # ... and even if it does not, publish refuses the second copy
    second = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-2")
    assert store.publish(second, make_release_set(), make_run("run-2", obj)) is False
    # a retry of the run that published is a no-op too, and keeps its record 'completed'
    third = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-1")
    assert store.publish(third, make_release_set(), make_run("run-1", obj)) is False
    ro = ReadOnlyStore(store_url)
    assert ro.budget("employees").epsilon_spent == pytest.approx(1.0)
    assert ro.budget("employees").epsilon_reserved == 0
    assert len(ro.releases("employees")) == 2  # one release set of two releases
    runs = {r.run_id: r for r in ro.runs()}
    assert runs["run-1"].status == "completed"
    assert runs["run-2"].status == "duplicate" and runs["run-2"].epsilon_spent == 0
    # a new version of the same key (new etag) is a new object version
    new = make_obj(etag="etag-2")
    res = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=new, run_id="run-3")
    assert store.publish(res, make_release_set(), make_run("run-3", new)) is True
    store.close()


# --------------------------------------------------------------------------- crashes


def test_an_exception_inside_publish_leaves_no_value_and_no_spend(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AggregateStore(store_url)
    contract = make_contract(cap=CAP)
    obj = make_obj()
    res = store.reserve(contract, PrivacyLoss(CAP, 1e-7), obj=obj, run_id="run-1")
    original = AggregateStore._insert_releases

    def insert_then_fail(*args: Any, **kw: Any) -> None:
        original(*args, **kw)
        raise RuntimeError("injected crash between the inserts and the commit")

    monkeypatch.setattr(AggregateStore, "_insert_releases", staticmethod(insert_then_fail))
    with pytest.raises(RuntimeError, match="injected"):
        store.publish(res, make_release_set(loss=PrivacyLoss(CAP, 1e-7)), make_run("run-1", obj))
    monkeypatch.undo()
    counts = _table_counts(store_url)
    assert counts == {"releases": 0, "published_values": 0, "insights": 0,
                      "published_objects": 0, "committed_eps": 0.0, "committed_rho": 0.0,
                      "committed_delta": 0.0}
    assert store.find_published(obj) is None
    ro = ReadOnlyStore(store_url)
    assert ro.budget("employees").epsilon_spent == 0
    store.cancel(res)  # what the flow does on failure
    b = ro.budget("employees")
    assert (b.epsilon_spent, b.epsilon_reserved, b.epsilon_remaining) == (0, 0, CAP)
    # and the whole budget can be used again
    again = store.reserve(contract, PrivacyLoss(CAP, 1e-7), obj=obj, run_id="run-2")
    assert store.publish(again, make_release_set(loss=PrivacyLoss(CAP, 1e-7)),
                         make_run("run-2", obj))
    store.close()


def test_a_process_killed_inside_publish_leaves_no_value_and_no_spend(sqlite_url: str) -> None:
    AggregateStore(sqlite_url).close()
    ctx = _process_context()
    proc = ctx.Process(target=crash_worker, args=(sqlite_url, CAP))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == -9  # SIGKILL inside the publish transaction
    counts = _table_counts(sqlite_url)
    assert counts == {"releases": 0, "published_values": 0, "insights": 0,
                      "published_objects": 0, "committed_eps": 0.0, "committed_rho": 0.0,
                      "committed_delta": 0.0}
    ro = ReadOnlyStore(sqlite_url)
    assert ro.budget("employees").epsilon_spent == 0
    # the dead run's reservation still holds the budget until it expires ...
    assert ro.budget("employees").epsilon_reserved == CAP
    with pytest.raises(BudgetExhausted, match="reserved by runs still in progress"):
        AggregateStore(sqlite_url).reserve(
            make_contract(cap=CAP), PrivacyLoss(1.0), obj=make_obj(), run_id="run-2"
        )
    # ... after which it counts for nothing: the crashed run released nothing
    later = Clock(datetime.now(UTC) + timedelta(minutes=31))
    ro_later = ReadOnlyStore(sqlite_url, clock=later)
    assert [e.state for e in ro_later.ledger("employees")] == ["expired"]
    assert ro_later.budget("employees").epsilon_remaining == CAP
    store = AggregateStore(sqlite_url, clock=later)
    res = store.reserve(make_contract(cap=CAP), PrivacyLoss(CAP, 1e-7), obj=make_obj(),
                        run_id="run-3")
    assert store.publish(res, make_release_set(loss=PrivacyLoss(CAP, 1e-7)),
                         make_run("run-3", make_obj()))
    store.close()


def test_an_expired_reservation_is_published_only_if_the_budget_still_allows(
    sqlite_url: str,
) -> None:
    clock = Clock()
    store = AggregateStore(sqlite_url, clock=clock, reservation_timeout=timedelta(minutes=30))
    contract = make_contract(cap=2.0)
    slow_obj, fast_obj = make_obj(name="slow.csv"), make_obj(name="fast.csv")
    slow = store.reserve(contract, PrivacyLoss(2.0, 1e-7), obj=slow_obj, run_id="slow")
    clock.advance(minutes=45)  # the slow run's reservation expired; another run used the budget
    fast = store.reserve(contract, PrivacyLoss(2.0, 1e-7), obj=fast_obj, run_id="fast")
    assert store.publish(fast, make_release_set(loss=PrivacyLoss(2.0, 1e-7)),
                         make_run("fast", fast_obj))
    with pytest.raises(BudgetExhausted):
        store.publish(slow, make_release_set(loss=PrivacyLoss(2.0, 1e-7)),
                      make_run("slow", slow_obj))
    b = ReadOnlyStore(sqlite_url, clock=clock).budget("employees")
    assert b.epsilon_spent == pytest.approx(2.0) and b.epsilon_reserved == 0
    states = {e.run_id: e.state for e in ReadOnlyStore(sqlite_url, clock=clock).ledger("employees")}
    assert states == {"slow": "cancelled", "fast": "committed"}


# --------------------------------------------------------------------------- refusals


def _forged_loss(epsilon: float, delta: float = 0.0) -> PrivacyLoss:
    """A PrivacyLoss that skipped its own checks, as a bug elsewhere might build one."""
    loss = object.__new__(PrivacyLoss)
    object.__setattr__(loss, "epsilon", epsilon)
    object.__setattr__(loss, "delta", delta)
    return loss


BAD_EPSILONS = [-1.0, 0.0, -0.0, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("eps", BAD_EPSILONS)
def test_a_privacy_loss_refuses_bad_epsilon(eps: float) -> None:
    with pytest.raises(PipelineError, match="ε must be"):
        PrivacyLoss(eps)


@pytest.mark.parametrize("eps", BAD_EPSILONS)
def test_reserve_and_publish_refuse_bad_epsilon(sqlite_url: str, eps: float) -> None:
    store = AggregateStore(sqlite_url)
    contract = make_contract()
    with pytest.raises(PipelineError, match="ε must be finite and positive"):
        store.reserve(contract, _forged_loss(eps), obj=make_obj(), run_id="r")
    res = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=make_obj(), run_id="r")
    forged = dataclasses.replace(make_release_set(), loss=_forged_loss(eps))
    with pytest.raises(PipelineError, match="ε must be finite and positive"):
        store.publish(res, forged, make_run("r", make_obj()))
    assert ReadOnlyStore(sqlite_url).budget("employees").epsilon_spent == 0
    store.close()


@pytest.mark.parametrize("delta", [-1e-9, math.nan, math.inf, 1.0])
def test_reserve_refuses_bad_delta(sqlite_url: str, delta: float) -> None:
    with pytest.raises(PipelineError, match="δ must be"):
        AggregateStore(sqlite_url).reserve(
            make_contract(), _forged_loss(1.0, delta), obj=make_obj(), run_id="r"
        )


@pytest.mark.parametrize("eps", [0.0, -1.0])
def test_the_database_itself_refuses_non_positive_epsilon(store_url: str, eps: float) -> None:
    store = AggregateStore(store_url)
    store.register_dataset(make_contract())
    now = datetime.now(UTC)
    with pytest.raises(sa_exc.IntegrityError), store._engine.begin() as conn:
        conn.execute(insert(schema.ledger).values(
            dataset="employees", run_id="r", bucket="b", key="k", etag="e", epsilon=eps,
            delta=0.0, state="committed", created_at=now))
    store.close()


@pytest.mark.parametrize("cap", [0.0, -1.0, math.nan, math.inf])
def test_a_contract_refuses_a_bad_cap(cap: float) -> None:
    with pytest.raises(ValueError, match="epsilon_cap"):
        make_contract(cap=cap)


def test_budget_exhausted_states_pending_spent_and_remaining(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    contract = make_contract(cap=2.5)
    a, b = make_obj(name="a.csv"), make_obj(name="b.csv")
    res = store.reserve(contract, PrivacyLoss(2.0, 1e-7), obj=a, run_id="a")
    store.publish(res, make_release_set(loss=PrivacyLoss(2.0, 1e-7)), make_run("a", a))
    with pytest.raises(BudgetExhausted) as err:
        store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=b, run_id="b")
    msg = str(err.value)
    assert "dataset 'employees'" in msg and "pending ε=1" in msg
    assert "spent ε=2" in msg and "remaining ε=0.5" in msg
    assert [e.run_id for e in ReadOnlyStore(sqlite_url).ledger("employees")] == ["a"]


def test_delta_is_capped_too(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    contract = make_contract(cap=10.0, delta=1e-6)
    store.reserve(contract, PrivacyLoss(1.0, 8e-7), obj=make_obj(name="a.csv"), run_id="a")
    with pytest.raises(BudgetExhausted, match="δ"):
        store.reserve(contract, PrivacyLoss(1.0, 8e-7), obj=make_obj(name="b.csv"), run_id="b")


# --------------------------------------------------------------------------- window policy


@pytest.mark.parametrize(
    ("window", "start", "next_period"),
    [
        ("day", datetime(2024, 5, 17, 8, tzinfo=UTC), datetime(2024, 5, 18, 0, 0, 1, tzinfo=UTC)),
        ("week", datetime(2024, 5, 19, 23, tzinfo=UTC), datetime(2024, 5, 20, 0, 1, tzinfo=UTC)),
        ("month", datetime(2024, 1, 31, 23, tzinfo=UTC), datetime(2024, 2, 1, 0, 1, tzinfo=UTC)),
        ("quarter", datetime(2024, 3, 31, 23, tzinfo=UTC), datetime(2024, 4, 1, 1, tzinfo=UTC)),
        ("year", datetime(2024, 12, 31, 23, tzinfo=UTC), datetime(2025, 1, 1, 1, tzinfo=UTC)),
    ],
)
def test_window_policy_resets_each_calendar_period(
    store_url: str, window: str, start: datetime, next_period: datetime
) -> None:
    clock = Clock(start)
    store = AggregateStore(store_url, clock=clock)
    contract = make_contract(cap=2.0, policy="window", window=window)

    def release(name: str) -> None:
        obj = make_obj(name=name)
        res = store.reserve(contract, PrivacyLoss(2.0, 1e-7), obj=obj, run_id=name)
        assert store.publish(res, make_release_set(loss=PrivacyLoss(2.0, 1e-7)),
                             make_run(name, obj))

    release("first")
    clock.advance(minutes=30)  # same period still (every start is ≥ 1 h before its end)
    with pytest.raises(BudgetExhausted):
        release("second")
    clock.now = next_period
    release("third")  # a new calendar period: spending starts again
    b = ReadOnlyStore(store_url, clock=clock).budget("employees")
    assert b.window_start is not None and b.window_start <= next_period
    assert b.epsilon_spent == pytest.approx(2.0) and b.epsilon_remaining == 0
    clock.now = start
    assert ReadOnlyStore(store_url, clock=clock).budget("employees").epsilon_spent == 2.0
    store.close()


def test_lifetime_policy_never_resets(sqlite_url: str) -> None:
    clock = Clock()
    store = AggregateStore(sqlite_url, clock=clock)
    contract = make_contract(cap=1.0)
    obj = make_obj()
    res = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=obj, run_id="a")
    store.publish(res, make_release_set(), make_run("a", obj))
    clock.advance(days=800)
    with pytest.raises(BudgetExhausted):
        store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=make_obj(name="b"), run_id="b")
