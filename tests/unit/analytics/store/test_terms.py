"""Pinned budget terms, pure: what differs, what weakens the guarantee, how it is worded."""

from __future__ import annotations

import dataclasses

import pytest

from analytics.store.terms import (
    SETTINGS,
    Terms,
    changed_message,
    diff_terms,
    format_number,
    initial_changes,
    set_command,
)
from tests.unit.analytics.store.helpers import make_contract

BASE = Terms(50.0, 1e-6, "lifetime", None, "employee_id", 12)


def _with(**kw: object) -> Terms:
    return dataclasses.replace(BASE, **kw)  # type: ignore[arg-type]


def test_terms_of_a_contract() -> None:
    assert Terms.of_contract(make_contract(cap=3.0)) == Terms(3.0, 1e-6, "lifetime", None,
                                                              None, 1)
    unit = Terms.of_contract(make_contract(unit="person", max_rows=5, policy="window",
                                           window="week"))
    assert (unit.privacy_unit, unit.max_rows_per_unit, unit.window) == ("person", 5, "week")
    assert Terms.of_contract(make_contract()).rows_are_people
    assert not unit.rows_are_people


def test_a_window_under_the_lifetime_policy_is_not_a_term() -> None:
    contract = make_contract(policy="lifetime", window="month")
    assert Terms.of_contract(contract).window is None


@pytest.mark.parametrize(
    ("change", "text", "weakens"),
    [
        ({"epsilon_cap": 60.0}, "epsilon_cap 50 -> 60 (raises the cap)", True),
        ({"epsilon_cap": 40.0}, "epsilon_cap 50 -> 40 (lowers the cap)", False),
        ({"delta_cap": 2e-6}, "delta_cap 1e-06 -> 2e-06 (raises the cap)", True),
        ({"delta_cap": 0.0}, "delta_cap 1e-06 -> 0 (lowers the cap)", False),
        ({"privacy_unit": "badge"}, "privacy_unit employee_id -> badge (weakens the guarantee)",
         True),
        ({"privacy_unit": None, "max_rows_per_unit": 1},
         "privacy_unit employee_id -> rows are people (weakens the guarantee)", True),
        ({"max_rows_per_unit": 20},
         "max_rows_per_unit 12 -> 20 (changes the noise, not the guarantee)", False),
    ],
)
def test_each_change_is_named_with_its_effect(
    change: dict[str, object], text: str, weakens: bool
) -> None:
    [first, *_] = diff_terms(BASE, _with(**change))
    assert str(first) == text
    assert first.weakens is weakens


def test_policy_and_window_changes_weaken_the_guarantee() -> None:
    changes = diff_terms(BASE, _with(policy="window", window="month"))
    assert [str(c) for c in changes] == [
        "policy lifetime -> window (weakens the guarantee)",
        "window none -> month (weakens the guarantee)",
    ]
    monthly = _with(policy="window", window="month")
    assert [str(c) for c in diff_terms(monthly, _with(policy="window", window="year"))] == [
        "window month -> year (weakens the guarantee)"
    ]
    back = diff_terms(monthly, BASE)
    assert [c.setting for c in back] == ["policy", "window"] and all(c.weakens for c in back)


def test_equal_terms_differ_in_nothing() -> None:
    assert diff_terms(BASE, _with()) == []


def test_an_unpinned_unit_is_pinned_not_changed() -> None:
    legacy = _with(privacy_unit=None, max_rows_per_unit=None)
    changes = diff_terms(legacy, BASE)
    assert [(c.setting, c.old, c.new, c.weakens) for c in changes] == [
        ("privacy_unit", None, "employee_id", False),
        ("max_rows_per_unit", None, "12", False),
    ]
    # terms that pin no unit leave the unit alone
    assert diff_terms(BASE, legacy) == []


def test_first_registration_records_every_setting() -> None:
    entries = initial_changes(BASE)
    assert [c.setting for c in entries] == list(SETTINGS)
    assert [c.new for c in entries] == ["50", "1e-06", "lifetime", "none", "employee_id", "12"]
    assert all(c.old is None and not c.weakens for c in entries)


def test_the_refusal_says_exactly_what_to_run() -> None:
    new = _with(epsilon_cap=60.0, policy="window", window="month")
    message = changed_message("employees", diff_terms(BASE, new), new)
    assert message == (
        "dataset 'employees': the contract changes its pinned budget terms: epsilon_cap 50 -> "
        "60 (raises the cap), policy lifetime -> window (weakens the guarantee), window none -> "
        "month (weakens the guarantee); nothing was released. If your privacy policy allows "
        "it, an operator runs: privacy-analytics budget set employees --epsilon-cap 60 "
        '--policy window --window month --force --reason "..."'
    )
    assert "\n" not in message


def test_a_change_that_weakens_nothing_needs_no_force() -> None:
    new = _with(epsilon_cap=40.0, max_rows_per_unit=3)
    command = set_command("employees", diff_terms(BASE, new), new)
    assert command == (
        'privacy-analytics budget set employees --epsilon-cap 40 --max-rows-per-unit 3 '
        '--reason "..."'
    )
    assert "To accept the change" in changed_message("employees", diff_terms(BASE, new), new)


def test_the_command_quotes_a_column_name_and_names_rows_are_people() -> None:
    odd = _with(privacy_unit="person id")
    assert "--privacy-unit 'person id' --force" in set_command("d", diff_terms(BASE, odd), odd)
    people = _with(privacy_unit=None, max_rows_per_unit=1)
    command = set_command("d", diff_terms(BASE, people), people)
    assert "--rows-are-people --max-rows-per-unit 1 --force" in command
    to_lifetime = diff_terms(_with(policy="window", window="month"), BASE)
    assert "--window" not in set_command("d", to_lifetime, BASE)


@pytest.mark.parametrize("x", [50.0, 1e-6, 0.1, 1 / 3, 1e16, 2.5])
def test_numbers_read_back_exactly(x: float) -> None:
    assert float(format_number(x)) == x
