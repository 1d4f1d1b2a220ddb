"""The dashboard's one error component: every error family says what happened and, where
there is something to do, what to do; never a traceback."""

from __future__ import annotations

import pytest
from dash import html

from dashboard.components import error_panel, exhausted_warning, no_datasets, ran_out
from dashboard.ids import BUDGET, DATASET, OVERVIEW
from privacy.errors import (
    BudgetExhausted,
    InvalidKey,
    PipelineError,
    StorageUnavailable,
)
from tests.unit.dashboard.values import budget


def _text(component: object) -> str:
    out: list[str] = []

    def walk(c: object) -> None:
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list | tuple):
            for x in c:
                walk(x)
        elif c is not None:
            walk(getattr(c, "children", None))

    walk(component)
    return " ".join(out)


@pytest.mark.parametrize(("exc", "title"), [
    (StorageUnavailable("aggregate store at sqlite:///x.db: database is locked"),
     "The aggregate store cannot be reached"),
    (BudgetExhausted("dataset 'employees': pending ε=1 would exceed the cap"),
     "Privacy budget exhausted"),
    (InvalidKey("file name '../a.csv' is not allowed"), "Not allowed"),
    (PipelineError("something else"), "Something went wrong"),
])
def test_error_panel_shape(exc: PipelineError, title: str) -> None:
    panel = error_panel(exc, OVERVIEW)
    assert panel.id == OVERVIEW.error
    heading = panel.children[0]
    assert isinstance(heading, html.H5) and heading.children == title
    text = _text(panel)
    assert str(exc) in text and "Traceback" not in text


def test_unreachable_store_says_what_to_do() -> None:
    text = _text(error_panel(StorageUnavailable("down"), BUDGET))
    assert "What to do" in text and "PA_DASHBOARD_STORE_URL" in text


def test_empty_and_exhausted_states_say_what_to_do() -> None:
    assert "What to do" in _text(no_datasets(OVERVIEW))
    warning = exhausted_warning(budget(), DATASET.exhausted)
    assert warning.id == DATASET.exhausted
    assert "epsilon_cap" in _text(warning) and "What to do" in _text(warning)


@pytest.mark.parametrize(("spent", "out", "said", "flags"), [
    ((10.0, 0.0), ["ε"], "Its ε cannot", "--epsilon-cap X --force"),
    ((3.0, 1e-6), ["δ"], "Its δ cannot", "--delta-cap X --force"),
    ((9.5, 9.5e-7), ["ε", "δ"], "Neither its ε nor its δ can",
     "--epsilon-cap X --delta-cap X --force"),
])
def test_the_exhausted_warning_says_which_ran_out(spent: tuple[float, float], out: list[str],
                                                  said: str, flags: str) -> None:
    b = budget(*spent)
    assert b.exhausted and ran_out(b) == out
    text = _text(exhausted_warning(b, DATASET.exhausted))
    assert f"{said} pay for another release" in text and flags in text
    if "δ" in out:
        assert "budget.delta in" in text and f"δ {spent[1]:.3g} spent of 1e-06" in text
    else:
        assert "budget.delta" not in text
    assert ran_out(budget(3.0, 0.0)) == []
