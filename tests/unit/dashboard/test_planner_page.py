"""The planner page: a dropped contract's defaults in the form, predictions that follow ε
and the analyses' weights, a dataset release over several files; it reads nothing but the
contract it is given."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from dashboard.ids import PLANNER
from dashboard.pages import planner
from privacy.contract import parse_contract
from privacy.errors import PipelineError
from tests.unit.dashboard.test_app import ids, texts, walk

ROOT = Path(__file__).resolve().parents[3]
TEXT = (ROOT / "contracts" / "employees.yaml").read_text()


def _count_half_width(page: object) -> float:
    """The predicted ± of the summary's row count (the first table: one file)."""
    rows = [texts(r) for r in walk(page) if type(r).__name__ == "Tr"]
    line = next(t for t in rows if t.startswith("summary count"))
    return float(line.split("±")[1].split()[0].replace(",", ""))


def test_a_dropped_contract_is_read_and_nothing_else() -> None:
    url = "data:application/x-yaml;base64," + base64.b64encode(TEXT.encode()).decode()
    assert planner.contract_text(url) == TEXT
    for bad, why in ((None, "drop a contract"), ("data:x;base64,@@@", "could not be read"),
                     ("data:x;base64," + base64.b64encode(b"\xff\xfe").decode(), "not UTF-8"),
                     ("data:x;base64," + base64.b64encode(b"a" * (300 * 1024)).decode(),
                      "at most 256 KiB")):
        with pytest.raises(PipelineError, match=why):
            planner.contract_text(bad)


def test_the_form_has_the_contracts_defaults() -> None:
    form = planner.form(parse_contract(TEXT))
    found = ids(form)
    assert {PLANNER.people, PLANNER.rows, PLANNER.epsilon, PLANNER.files} <= found
    [rows] = [c for c in walk(form) if getattr(c, "id", None) == PLANNER.rows]
    assert rows.value == 8  # the example contract's max_rows_per_unit
    weights = [c for c in walk(form) if isinstance(getattr(c, "id", None), dict)
               and c.id["type"] == PLANNER.weight]
    assert weights and all(w.value == 1.0 for w in weights)
    assert "Contract: employees (v1)" in texts(form)


def test_predictions_follow_epsilon_and_weights() -> None:
    base = planner.result(TEXT, 2000, 4, 1.0, 1, [1.0] * 6)
    more = planner.result(TEXT, 2000, 4, 2.0, 1, [1.0] * 6)
    heavy = planner.result(TEXT, 2000, 4, 1.0, 1, [4.0, 1, 1, 1, 1, 1])
    hw, hw2, hw4 = (_count_half_width(p) for p in (base, more, heavy))
    assert hw2 == pytest.approx(hw / 2, rel=0.1)  # twice the ε: half the noise
    assert hw4 < hw / 2  # the summary gets 4/9 of the ε instead of 1/6
    split = next(c for c in walk(heavy) if getattr(c, "id", None) == PLANNER.split)
    assert "summary 0.4" in texts(split) and "quality 0.1" in texts(split)


def test_a_dataset_release_over_several_files() -> None:
    page = planner.result(TEXT, 1000, 4, 1.0, 12, [1.0] * 6)
    text = texts(page)
    assert "Dataset release over 12 files: each person 48 rows, at most 24 kept" in text
    assert "about 50% of rows left out" in text


def test_a_broken_contract_or_an_impossible_plan_says_why() -> None:
    alert = planner.result(TEXT, 10**9, 8, 1.0, 1, [])
    assert getattr(alert, "id", None) == PLANNER.error and "max_rows_per_file" in texts(alert)
    assert planner.result(None, 1000, 8, 1.0, 1, []) is None
