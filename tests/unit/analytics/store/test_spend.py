"""One spend and exhaustion definition for the writer and the read-only API, on ε and δ."""

from __future__ import annotations

import pickle

import pytest

from analytics.store import AggregateStore, ReadOnlyStore, Spend, exhausted
from analytics.store.spend import check_budget
from privacy.budget import PrivacyLoss
from privacy.errors import BudgetExhausted
from tests.unit.analytics.store.helpers import (
    make_contract,
    make_obj,
    publish_file,
)

CAP = PrivacyLoss(10.0, 1e-6)


def _publish(store: AggregateStore, name: str, loss: PrivacyLoss, **contract: float) -> None:
    publish_file(store, make_contract(cap=10.0, **contract), name, loss)  # type: ignore[arg-type]


def _refused(store: AggregateStore, loss: PrivacyLoss, **contract: float) -> bool:
    try:
        res = store.reserve(make_contract(cap=10.0, **contract), loss, obj=make_obj(name="next"),
                            run_id="run-next")
    except BudgetExhausted:
        return True
    store.cancel(res)
    return False


# --------------------------------------------------------------------------- the definition


def test_exhausted_checks_epsilon_and_delta() -> None:
    per_release = PrivacyLoss(1.0, 1e-7)
    assert not exhausted(Spend(), CAP, per_release)
    assert not exhausted(Spend(committed_epsilon=9.0, committed_delta=9e-7), CAP, per_release)
    assert exhausted(Spend(committed_epsilon=9.5), CAP, per_release)  # ε
    assert exhausted(Spend(committed_epsilon=2.0, committed_delta=1e-6), CAP, per_release)  # δ
    # live reservations count like committed spend
    assert exhausted(Spend(committed_epsilon=2.0, reserved_epsilon=1.0, committed_delta=5e-7,
                           reserved_delta=5e-7), CAP, per_release)
    # a release that needs no δ still fits once the δ cap is spent
    assert not exhausted(Spend(committed_epsilon=2.0, committed_delta=1e-6), CAP,
                         PrivacyLoss(1.0, 0.0))
    # float summation error is absorbed, a real overspend is not
    assert not exhausted(Spend(committed_epsilon=0.1 + 0.2 + 8.7), CAP, PrivacyLoss(1.0))
    assert exhausted(Spend(committed_epsilon=9.0 + 1e-6), CAP, PrivacyLoss(1.0))


def test_check_budget_refuses_what_exhausted_calls_exhausted() -> None:
    spend = Spend(committed_epsilon=2.0, committed_delta=6e-7, reserved_epsilon=1.0,
                  reserved_delta=3e-7)
    pending = PrivacyLoss(1.0, 2e-7)
    assert exhausted(spend, CAP, pending)
    with pytest.raises(BudgetExhausted) as err:
        check_budget("employees", pending, CAP, spend)
    exc = err.value
    assert (exc.dataset, exc.pending, exc.cap) == ("employees", pending, CAP)
    assert exc.spent is not None and exc.spent.epsilon == 3.0
    assert exc.spent.delta == pytest.approx(9e-7) and exc.reserved == PrivacyLoss(1.0, 3e-7)
    assert "reserved by runs still in progress" in str(exc)
    check_budget("employees", PrivacyLoss(1.0, 1e-7), CAP, spend)  # fits: no error


# --------------------------------------------------------------------------- writer and reader


def test_a_spent_delta_cap_is_exhausted_for_the_writer_and_the_reader(store_url: str) -> None:
    store = AggregateStore(store_url)
    loss = PrivacyLoss(1.0, 5e-7)
    ro = ReadOnlyStore(store_url)
    _publish(store, "a.csv", loss, delta_per_release=5e-7)
    assert not ro.budget("employees").exhausted and not _refused(store, loss)
    _publish(store, "b.csv", loss, delta_per_release=5e-7)
    b = ro.budget("employees")
    assert (b.epsilon_spent, b.epsilon_remaining) == (2.0, 8.0)  # ε is far from its cap
    assert b.delta_per_release == 5e-7 and b.delta_remaining == 0
    # the δ cap is spent: the writer refuses the next file, and the reader says so
    assert _refused(store, loss, delta_per_release=5e-7)
    assert b.exhausted
    assert ro.datasets()[0].exhausted
    store.close()


def test_a_spent_delta_cap_does_not_exhaust_releases_without_delta(store_url: str) -> None:
    store = AggregateStore(store_url)
    _publish(store, "a.csv", PrivacyLoss(1.0, 1e-6))  # spends the whole δ cap
    store.register_dataset(make_contract(cap=10.0, delta_per_release=0.0))
    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert b.delta_remaining == 0 and b.delta_per_release == 0
    assert not b.exhausted
    assert not _refused(store, PrivacyLoss(1.0, 0.0), delta_per_release=0.0)
    store.close()


def test_delta_per_release_follows_the_contract(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract(cap=10.0))  # default: the δ cap over 10 releases
    ro = ReadOnlyStore(sqlite_url)
    assert ro.budget("employees").delta_per_release == pytest.approx(1e-7)
    store.register_dataset(make_contract(cap=10.0, delta_per_release=2.5e-7, version=2))
    assert ro.budget("employees").delta_per_release == 2.5e-7
    store.close()


def test_the_writers_refusal_carries_its_fields_and_pickles(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    contract = make_contract(cap=2.5)
    store.reserve(contract, PrivacyLoss(2.0, 1e-7), obj=make_obj(name="a.csv"), run_id="a")
    with pytest.raises(BudgetExhausted) as err:
        store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=make_obj(name="b.csv"), run_id="b")
    exc = err.value
    assert exc.dataset == "employees"
    assert exc.pending == PrivacyLoss(1.0, 1e-7)
    assert exc.spent == PrivacyLoss(2.0, 1e-7) and exc.reserved == PrivacyLoss(2.0, 1e-7)
    assert exc.cap == PrivacyLoss(2.5, 1e-6)
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is BudgetExhausted and str(again) == str(exc)
    assert (again.dataset, again.pending, again.spent, again.cap, again.reserved) == (
        exc.dataset, exc.pending, exc.spent, exc.cap, exc.reserved)
    store.close()
