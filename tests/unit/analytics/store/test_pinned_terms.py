"""Pinned budget terms in the aggregate store (ARCHITECTURE invariant 9), on SQLite and
PostgreSQL: a contract that differs is refused; only a logged operator action changes them;
the log is append-only; concurrent changes and reservations keep the ledger under the cap
(stores from before the terms were pinned: ``test_upgrades``)."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, text

from analytics.store import AggregateStore, ReadOnlyStore, UnknownDataset, schema
from privacy.budget import PrivacyLoss
from privacy.contract import Budget
from privacy.errors import BudgetExhausted, BudgetTermsChanged, ContractError, TermsChangeRefused
from tests.unit.analytics.store.helpers import (
    Clock,
    make_contract,
    make_obj,
    publish_file,
    publish_worker_file,
)


def _spend(store: AggregateStore, eps: float, name: str, cap: float = 3.0, **kw: object) -> None:
    contract = make_contract(cap=cap, **kw)  # type: ignore[arg-type]
    publish_file(store, contract, name, PrivacyLoss(eps, 1e-7))


def _ledger_rows(url: str) -> int:
    store = AggregateStore(url)
    with store._engine.connect() as conn:
        n = int(conn.execute(select(func.count()).select_from(schema.ledger)).scalar_one())
    store.close()
    return n


# --------------------------------------------------------------------------- first registration


def test_first_registration_pins_and_logs_the_terms(store_url: str) -> None:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    store.register_dataset(make_contract(cap=3.0, unit="person", max_rows=4))
    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert (b.privacy_unit, b.max_rows_per_unit, b.rows_are_people) == ("person", 4, False)
    [summary] = ro.datasets()
    assert (summary.privacy_unit, summary.max_rows_per_unit) == ("person", 4)
    entries = ro.terms_changes("employees")
    assert [(e.setting, e.old, e.new) for e in reversed(entries)] == [
        ("epsilon_cap", None, "3"),
        ("delta_cap", None, "1e-06"),
        ("policy", None, "lifetime"),
        ("window", None, "none"),
        ("privacy_unit", None, "person"),
        ("max_rows_per_unit", None, "4"),
    ]
    assert {(e.actor, e.reason, e.weakens, e.forced) for e in entries} == {
        ("pipeline", "first registration", False, False)
    }
    assert all(e.changed_at == clock.now for e in entries)
    assert [e.id for e in entries] == sorted((e.id for e in entries), reverse=True)
    store.register_dataset(make_contract(cap=3.0, unit="person", max_rows=4))  # same: no entry
    assert len(ro.terms_changes("employees")) == 6
    store.close()


def test_rows_are_people_read_as_such(sqlite_url: str) -> None:
    AggregateStore(sqlite_url).register_dataset(make_contract())
    b = ReadOnlyStore(sqlite_url).budget("employees")
    assert (b.privacy_unit, b.max_rows_per_unit, b.rows_are_people) == (None, 1, True)
    entries = {e.setting: e.new for e in ReadOnlyStore(sqlite_url).terms_changes()}
    assert entries["privacy_unit"] == "rows are people"


# --------------------------------------------------------------------------- refusals


def test_raising_the_cap_in_the_contract_refuses_the_next_registration(store_url: str) -> None:
    store = AggregateStore(store_url)
    _spend(store, 3.0, "a.csv", cap=3.0)  # the cap is spent
    with pytest.raises(BudgetTermsChanged) as err:
        store.register_dataset(make_contract(cap=60.0))
    message = str(err.value)
    assert err.value.kind == "terms_changed"
    assert message.startswith("dataset 'employees': the contract changes its pinned budget terms: "
                              "epsilon_cap 3 -> 60 (raises the cap); nothing was released.")
    assert message.endswith(
        'privacy-analytics budget set employees --epsilon-cap 60 --force --reason "..."'
    )
    # reserve checks the same terms, so a run cannot slip past register_dataset
    with pytest.raises(BudgetTermsChanged):
        store.reserve(make_contract(cap=60.0), PrivacyLoss(1.0, 1e-7), obj=make_obj(name="b"),
                      run_id="b")
    ro = ReadOnlyStore(store_url)
    assert ro.budget("employees").epsilon_cap == 3.0 and ro.budget("employees").exhausted
    assert _ledger_rows(store_url) == 1
    assert len(ro.terms_changes("employees")) == 6  # the first registration only
    store.close()


def test_switching_the_policy_in_the_contract_is_refused(store_url: str) -> None:
    store = AggregateStore(store_url)
    _spend(store, 3.0, "a.csv", cap=3.0)
    monthly = make_contract(cap=3.0, policy="window", window="month")
    with pytest.raises(BudgetTermsChanged) as err:
        store.register_dataset(monthly)
    message = str(err.value)
    assert "policy lifetime -> window (weakens the guarantee)" in message
    assert "window none -> month" in message
    assert "--policy window --window month --force" in message
    with pytest.raises(BudgetTermsChanged):
        store.reserve(monthly, PrivacyLoss(1.0, 1e-7), obj=make_obj(name="b"), run_id="b")
    assert ReadOnlyStore(store_url).budget("employees").policy == "lifetime"
    assert _ledger_rows(store_url) == 1
    store.close()


def test_the_refusal_lists_its_changes_as_fields_and_pickles(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(cap=3.0))
    with pytest.raises(BudgetTermsChanged) as err:
        store.register_dataset(make_contract(cap=60.0, policy="window", window="month"))
    exc = err.value
    assert [(c.setting, c.old, c.new, c.weakens) for c in exc.changes] == [
        ("epsilon_cap", "3", "60", True),
        ("policy", "lifetime", "window", True),
        ("window", "none", "month", True),
    ]
    assert all(str(c) in str(exc) for c in exc.changes)  # the message names the same changes
    again = pickle.loads(pickle.dumps(exc))
    assert str(again) == str(exc) and again.changes == exc.changes
    store.close()


@pytest.mark.parametrize(
    ("contract_kw", "names"),
    [
        ({"cap": 2.0}, ["epsilon_cap 3 -> 2 (lowers the cap)"]),
        ({"delta": 1e-5}, ["delta_cap 1e-06 -> 1e-05 (raises the cap)"]),
        ({"unit": "person", "max_rows": 3}, ["privacy_unit rows are people -> person",
                                             "max_rows_per_unit 1 -> 3"]),
    ],
)
def test_any_other_difference_is_refused_too(
    sqlite_url: str, contract_kw: dict[str, object], names: list[str]
) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(cap=3.0))
    kw: dict[str, object] = {"cap": 3.0, **contract_kw}
    with pytest.raises(BudgetTermsChanged) as err:
        store.register_dataset(make_contract(**kw))  # type: ignore[arg-type]
    for name in names:
        assert name in str(err.value)


def test_a_per_release_above_the_pinned_cap_is_refused(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(cap=3.0))
    broken = make_contract(cap=3.0).model_copy(
        update={"budget": Budget.model_construct(epsilon_cap=3.0, delta=1e-6,
                                                 epsilon_per_release=5.0, policy="lifetime")}
    )
    with pytest.raises(ContractError, match="epsilon_per_release 5 exceeds the pinned "
                                            "epsilon_cap 3; nothing was released"):
        store.register_dataset(broken)
    assert ReadOnlyStore(sqlite_url).budget("employees").epsilon_per_release == 1.0


# --------------------------------------------------------------------------- operator changes


def test_budget_set_records_the_change_and_the_next_registration_succeeds(store_url: str) -> None:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    _spend(store, 3.0, "a.csv", cap=3.0)
    clock.advance(minutes=5)
    changes = store.set_terms("employees", epsilon_cap=60.0, policy="window", window="month",
                              force=True, actor="alice", reason="  new quarter  ")
    assert [(c.setting, c.old, c.new, c.weakens, c.forced) for c in changes] == [
        ("epsilon_cap", "3", "60", True, True),
        ("policy", "lifetime", "window", True, True),
        ("window", "none", "month", True, True),
    ]
    ro = ReadOnlyStore(store_url, clock=clock)
    newest = ro.terms_changes("employees")[:3]
    assert newest == list(reversed(changes))  # what set_terms returned is what was stored
    assert {(c.actor, c.reason, c.changed_at) for c in newest} == {
        ("alice", "new quarter", clock.now)
    }
    b = ro.budget("employees")
    assert (b.epsilon_cap, b.policy, b.window) == (60.0, "window", "month")
    new_terms = make_contract(cap=60.0, policy="window", window="month")
    store.register_dataset(new_terms)
    _spend(store, 1.0, "b.csv", cap=60.0, policy="window", window="month")
    with pytest.raises(BudgetTermsChanged):  # the old contract is now the one that differs
        store.register_dataset(make_contract(cap=3.0))
    store.close()


def test_lowering_a_cap_needs_no_force_even_below_the_spend(store_url: str) -> None:
    store = AggregateStore(store_url)
    _spend(store, 2.0, "a.csv", cap=3.0)
    [change] = store.set_terms("employees", epsilon_cap=1.0, actor="bob", reason="tighter")
    assert (change.old, change.new, change.weakens, change.forced) == ("3", "1", False, False)
    b = ReadOnlyStore(store_url).budget("employees")
    assert (b.epsilon_cap, b.epsilon_spent, b.epsilon_remaining, b.exhausted) == (
        1.0, 2.0, 0.0, True)
    store.register_dataset(make_contract(cap=1.0))
    with pytest.raises(BudgetExhausted):
        store.reserve(make_contract(cap=1.0), PrivacyLoss(1.0, 1e-7), obj=make_obj(name="b"),
                      run_id="b")
    [delta] = store.set_terms("employees", delta_cap=0.0, actor="bob", reason="no δ")
    assert (delta.setting, delta.new, delta.weakens) == ("delta_cap", "0", False)
    store.close()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"epsilon_cap": 5.0}, "epsilon_cap 3 -> 5 (raises the cap)"),
        ({"delta_cap": 1e-5}, "delta_cap 1e-06 -> 1e-05 (raises the cap)"),
        ({"policy": "window", "window": "year"}, "policy lifetime -> window"),
        ({"privacy_unit": "person", "max_rows_per_unit": 2}, "privacy_unit rows are people"),
    ],
)
def test_weakening_without_force_is_refused_and_changes_nothing(
    store_url: str, change: dict[str, object], named: str
) -> None:
    store = AggregateStore(store_url)
    store.register_dataset(make_contract(cap=3.0))
    ro = ReadOnlyStore(store_url)
    before = ro.terms_changes("employees")
    with pytest.raises(TermsChangeRefused) as err:
        store.set_terms("employees", actor="eve", reason="more", **change)  # type: ignore[arg-type]
    assert "weaken" in str(err.value) and "the guarantee" in str(err.value)
    assert "--force" in str(err.value) and named in str(err.value)
    assert "nothing was changed" in str(err.value)
    assert ro.terms_changes("employees") == before
    assert ro.budget("employees").epsilon_cap == 3.0
    store.close()


def test_rows_per_unit_change_needs_no_force(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(unit="person", max_rows=4))
    [c] = store.set_terms("employees", max_rows_per_unit=10, actor="ops", reason="longer files")
    assert (c.setting, c.old, c.new, c.weakens) == ("max_rows_per_unit", "4", "10", False)
    store.register_dataset(make_contract(unit="person", max_rows=10))
    store.close()


def test_switching_the_unit_to_rows_are_people_sets_one_row(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(unit="person", max_rows=4))
    changes = store.set_terms("employees", rows_are_people=True, force=True, actor="ops",
                              reason="one row each")
    assert [(c.setting, c.new) for c in changes] == [
        ("privacy_unit", "rows are people"), ("max_rows_per_unit", "1")]
    store.register_dataset(make_contract())
    store.close()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({}, "nothing to change: give at least one of"),
        ({"epsilon_cap": 3.0}, "nothing to change"),
        ({"reason": " "}, "--reason"),
        ({"window": "month"}, "a window applies only to policy window"),
        ({"policy": "window"}, "policy window needs --window"),
        ({"epsilon_cap": float("nan")}, "finite"),
        ({"epsilon_cap": -1.0}, "above 0"),
        ({"delta_cap": 1.0}, r"\[0, 1\)"),
        ({"max_rows_per_unit": 3}, "rows are people"),
        ({"rows_are_people": True, "max_rows_per_unit": 2}, "one row per person"),
        ({"privacy_unit": "p", "rows_are_people": True}, "not both"),
    ],
)
def test_set_terms_refuses_what_makes_no_sense(
    sqlite_url: str, kw: dict[str, object], match: str
) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(cap=3.0))
    args: dict[str, object] = {"actor": "ops", "reason": "why", "force": True, **kw}
    with pytest.raises(TermsChangeRefused, match=match):
        store.set_terms("employees", **args)  # type: ignore[arg-type]
    assert len(ReadOnlyStore(sqlite_url).terms_changes()) == 6


def test_set_terms_of_an_unknown_dataset_is_refused(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract())
    with pytest.raises(TermsChangeRefused, match=r"no dataset 'employes'.*known: employees"):
        store.set_terms("employes", epsilon_cap=1.0, actor="ops", reason="x")
    with pytest.raises(UnknownDataset):
        ReadOnlyStore(sqlite_url).terms_changes("employes")


# --------------------------------------------------------------------------- append-only


@pytest.mark.parametrize(
    "statement",
    ["UPDATE terms_changes SET reason = 'rewritten'", "DELETE FROM terms_changes",
     "UPDATE terms_changes SET new_value = '1000' WHERE setting = 'epsilon_cap'"],
)
def test_the_terms_log_is_append_only(store_url: str, statement: str) -> None:
    store = AggregateStore(store_url)
    store.register_dataset(make_contract(cap=3.0))
    store.set_terms("employees", epsilon_cap=2.0, actor="ops", reason="tighter")
    before = ReadOnlyStore(store_url).terms_changes()
    with pytest.raises(sa_exc.DBAPIError, match="append-only"), store._engine.begin() as conn:
        conn.execute(text(statement))
    after = ReadOnlyStore(store_url).terms_changes()
    assert after == before
    # later changes only add entries: the earlier ones stay exactly as they were
    store.set_terms("employees", epsilon_cap=1.0, actor="ops", reason="tighter still")
    assert ReadOnlyStore(store_url).terms_changes()[1:] == before
    store.close()


def test_the_terms_log_cannot_be_truncated_on_postgresql(pg_url: object) -> None:
    url = pg_url()  # type: ignore[operator]
    store = AggregateStore(url)
    store.register_dataset(make_contract())
    with pytest.raises(sa_exc.DBAPIError, match="append-only"), store._engine.begin() as conn:
        conn.execute(text("TRUNCATE terms_changes"))
    assert len(ReadOnlyStore(url).terms_changes()) == 6
    store.close()


# --------------------------------------------------------------------------- concurrency


N = 8


def _reserve_and_publish(url: str, i: int, barrier: threading.Barrier) -> str:
    """A pipeline run that, refused for changed terms, retries with the updated contract."""
    store = AggregateStore(url)
    try:
        obj = make_obj(name=f"f{i}.csv", etag=f"etag-{i}")
        barrier.wait(timeout=60)
        used = "old"
        try:
            try:
                res = store.reserve(make_contract(cap=4.0), PrivacyLoss(1.0, 1e-7), obj=obj,
                                    run_id=f"run-{i}")
            except BudgetTermsChanged:
                used = "new"
                res = store.reserve(make_contract(cap=2.0), PrivacyLoss(1.0, 1e-7), obj=obj,
                                    run_id=f"run-{i}")
        except BudgetExhausted:
            return "exhausted"
        threading.Event().wait(0.02)
        assert publish_worker_file(store, res, i)
        return used
    finally:
        store.close()


def test_concurrent_budget_set_and_reserve_keep_the_ledger_under_the_cap(store_url: str) -> None:
    store = AggregateStore(store_url)
    store.register_dataset(make_contract(cap=4.0))
    barrier = threading.Barrier(N + 1)

    def lower() -> str:
        barrier.wait(timeout=60)
        threading.Event().wait(0.01)
        store.set_terms("employees", epsilon_cap=2.0, actor="ops", reason="tighter")
        return "lowered"

    with ThreadPoolExecutor(N + 1) as pool:
        runs = [pool.submit(_reserve_and_publish, store_url, i, barrier) for i in range(N)]
        lowered = pool.submit(lower)
        outcomes = [f.result() for f in runs]
    assert lowered.result() == "lowered"
    old, new = outcomes.count("old"), outcomes.count("new")
    assert old + new + outcomes.count("exhausted") == N
    # before the change each reservation fit under 4; after it, everything fits under 2
    assert old <= 4
    if new:
        assert old + new <= 2, outcomes
    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert b.epsilon_spent == pytest.approx(old + new) and b.epsilon_reserved == 0
    assert b.epsilon_cap == 2.0
    assert b.epsilon_remaining == pytest.approx(max(2.0 - b.epsilon_spent, 0.0))
    [change] = [c for c in ro.terms_changes("employees") if c.old is not None]
    assert (change.setting, change.old, change.new) == ("epsilon_cap", "4", "2")
    store.close()
