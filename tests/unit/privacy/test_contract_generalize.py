"""Generalizations must fit the column type; broken contracts give a one-line reason."""

from __future__ import annotations

import pytest

from privacy.contract import parse_contract
from privacy.errors import ContractError

BASE = "dataset: d\nrows_are_people: true\nbudget: {epsilon_cap: 1}\ncolumns:\n"


@pytest.mark.parametrize(
    ("column", "field"),
    [
        (
            "x: {role: quasi_identifier, type: string, generalize: {kind: band, width: 5}}",
            "columns.x",
        ),
        (
            "x: {role: quasi_identifier, type: integer, generalize: {kind: date, to: year}}",
            "columns.x",
        ),
        (
            "x: {role: quasi_identifier, type: string, generalize: {kind: top_code, top: 3}}",
            "columns.x",
        ),
        (
            "x: {role: quasi_identifier, type: integer, generalize: {kind: band, width: 0}}",
            "columns.x.generalize",
        ),
    ],
)
def test_bad_generalization_names_the_column(column: str, field: str) -> None:
    with pytest.raises(ContractError) as err:
        parse_contract(BASE + "  " + column + "\n", "c.yaml")
    msg = str(err.value)
    assert msg.startswith("c.yaml: ") and field in msg and "\n" not in msg


def test_good_generalizations_parse() -> None:
    c = parse_contract(
        BASE
        + "  a: {role: quasi_identifier, type: integer, generalize: {kind: band, width: 5}}\n"
        + "  b: {role: quasi_identifier, type: date, generalize: {kind: date, to: year}}\n"
        + "  z: {role: quasi_identifier, type: string, generalize: {kind: prefix, length: 3}}\n"
    )
    assert len(c.columns) == 3
