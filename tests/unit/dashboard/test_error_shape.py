"""The dashboard's one error component: every error family says what happened and, where
there is something to do, what to do; never a traceback."""

from __future__ import annotations

import pytest
from dash import html

from dashboard.components import error_panel, exhausted_warning, no_datasets
from privacy.errors import (
    BudgetExhausted,
    InvalidKey,
    PipelineError,
    StorageUnavailable,
)


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
    panel = error_panel(exc, "overview")
    assert panel.id == "overview-error"
    heading = panel.children[0]
    assert isinstance(heading, html.H5) and heading.children == title
    text = _text(panel)
    assert str(exc) in text and "Traceback" not in text


def test_unreachable_store_says_what_to_do() -> None:
    text = _text(error_panel(StorageUnavailable("down"), "budget"))
    assert "What to do" in text and "PA_DASHBOARD_STORE_URL" in text


def test_empty_and_exhausted_states_say_what_to_do() -> None:
    assert "What to do" in _text(no_datasets("overview"))
    warning = exhausted_warning("employees", "dataset")
    assert warning.id == "dataset-exhausted"
    assert "epsilon_cap" in _text(warning) and "What to do" in _text(warning)
