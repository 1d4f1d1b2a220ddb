"""Budget arithmetic: a refusal states pending, spent and remaining, in its message and in
its fields, and survives pickling (Prefect may pickle exceptions)."""

from __future__ import annotations

import pickle

import pytest

from privacy.budget import PrivacyLoss, check_spend, exceeds
from privacy.errors import BudgetExhausted, BudgetTermsChanged


def test_exceeds_checks_epsilon_and_delta() -> None:
    cap = PrivacyLoss(10.0, 1e-6)
    assert not exceeds(PrivacyLoss(1.0, 1e-7), None, cap)
    assert exceeds(PrivacyLoss(1.0, 1e-7), PrivacyLoss(9.5, 0.0), cap)
    assert exceeds(PrivacyLoss(1.0, 1e-7), PrivacyLoss(2.0, 1e-6), cap)
    assert not exceeds(PrivacyLoss(1.0, 0.0), PrivacyLoss(2.0, 1e-6), cap)


def test_check_spend_sets_the_fields_and_keeps_the_message() -> None:
    pending, spent, cap = PrivacyLoss(1.0, 1e-7), PrivacyLoss(9.5, 2e-7), PrivacyLoss(10.0, 1e-6)
    with pytest.raises(BudgetExhausted) as err:
        check_spend("employees", pending, spent, cap)
    exc = err.value
    assert str(exc).startswith(
        "dataset 'employees': pending ε=1, δ=1e-07 would exceed the budget cap ε=10, δ=1e-06 "
        "(spent ε=9.5, δ=2e-07; remaining ε=0.5, δ=8e-07)"
    )
    assert "reserved by runs" not in str(exc)
    assert (exc.dataset, exc.pending, exc.spent, exc.cap, exc.reserved) == (
        "employees", pending, spent, cap, None)
    check_spend("employees", PrivacyLoss(0.5, 1e-7), spent, cap)  # fits: no error


def test_a_refusal_names_what_reservations_hold() -> None:
    with pytest.raises(BudgetExhausted, match=r"\(spent includes ε=2, δ=1e-07 reserved by runs "
                                              r"still in progress\)$") as err:
        check_spend("employees", PrivacyLoss(1.0), PrivacyLoss(2.0, 1e-7), PrivacyLoss(2.5),
                    reserved=PrivacyLoss(2.0, 1e-7))
    assert err.value.reserved == PrivacyLoss(2.0, 1e-7)


def test_budget_errors_pickle_with_their_fields() -> None:
    exc = BudgetExhausted("dataset 'employees': pending ε=1 would exceed the cap",
                          dataset="employees", pending=PrivacyLoss(1.0), cap=PrivacyLoss(2.0))
    again = pickle.loads(pickle.dumps(exc))
    assert str(again) == str(exc) and again.kind == "budget_exhausted"
    assert (again.dataset, again.pending, again.spent, again.cap) == (
        "employees", PrivacyLoss(1.0), None, PrivacyLoss(2.0))
    plain = pickle.loads(pickle.dumps(BudgetExhausted("no fields")))
    assert plain.pending is None and str(plain) == "no fields"
    changed = pickle.loads(pickle.dumps(BudgetTermsChanged("terms differ", changes=["x"])))
    assert changed.changes == ["x"] and str(changed) == "terms differ"
    assert BudgetTermsChanged("terms differ").changes == []
