"""A new analysis kind is one module and one registration line.

The "module" here is this file's ``RowsAbove`` settings and ``plan``: it asks OpenDP for
one noisy sum (shared through the builder like any other aggregate) and publishes it. The
contract then accepts the kind, the release charges it like the others, and an unknown kind
is refused with the list of known ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import polars as pl
import pytest
from pydantic import BaseModel, ConfigDict

from analytics.analyses import kinds, register, release_analyses
from analytics.analyses.builder import Builder, Planned, Ref, Results
from analytics.analyses.names import QueryId
from analytics.analyses.values import estimate_of, published
from privacy.budget import PrivacyLoss
from privacy.contract import Contract
from privacy.errors import ContractError
from privacy.release import int_sum_agg
from privacy.results import PublishedValue


class RowsAbove(BaseModel):
    """How many rows have ``measure`` above a public ``threshold``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["rows_above"] = "rows_above"
    measure: str
    threshold: float


def plan(b: Builder, a: RowsAbove) -> None:
    settings = RowsAbove.model_validate(a.model_dump())
    column = f"above-threshold:{settings.measure}"
    b.columns[column] = (pl.col(settings.measure) > settings.threshold).fill_null(False).cast(pl.Int64)
    refs: list[Ref] = []
    q = b.query(QueryId.ALL)
    b.use(refs, q, int_sum_agg(column, (0, 1), column))

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        res = results[q]
        est = estimate_of(res, res.frame.row(0, named=True), column, (0.0, None))
        return ([published("rows_above", est, settings.measure)] if est else []), []

    b.planned_add(Planned("summary", b.unique_name("rows_above"), refs, finish))


@pytest.fixture
def rows_above() -> Iterator[None]:
    from analytics.analyses import registry
    from privacy.contract import analyses as contract

    register("rows_above", plan, RowsAbove)  # the one registration line
    yield
    registry._KINDS.pop("rows_above", None)
    contract._EXTRA_KINDS.pop("rows_above", None)


def _contract(kind: str) -> Contract:
    return Contract.model_validate(
        {
            "dataset": "reg",
            "rows_are_people": True,
            "budget": {"epsilon_cap": 100},
            "columns": {"x": {"role": "measure", "type": "float", "bounds": [0, 10]}},
            "analyses": [{"kind": "summary"}, {"kind": kind, "measure": "x", "threshold": 5}],
        }
    )


def test_a_registered_kind_is_planned_released_and_charged(rows_above: None) -> None:
    assert "rows_above" in kinds()
    frame = pl.DataFrame({"x": [1.0, 6.0, 7.0, 9.0] * 500})
    rs = release_analyses(frame.lazy(), _contract("rows_above"), PrivacyLoss(1.0))
    [release] = [r for r in rs.releases if r.name == "rows_above"]
    [value] = release.values
    assert value.metric == "rows_above" and value.lower is not None and value.upper is not None
    # The 95% interval misses 1 time in 20; five half-widths of Laplace noise miss ~1 in 3e6.
    half = (value.upper - value.lower) / 2
    assert abs(value.value - 1500) <= 5 * half
    assert release.loss is not None and release.loss.epsilon > 0
    assert rs.loss.epsilon == pytest.approx(1.0, rel=1e-6)


def test_an_unknown_kind_is_refused_with_the_known_ones() -> None:
    with pytest.raises(Exception, match="unknown analysis kind 'rows_above'"):
        _contract("rows_above")
    from analytics.analyses.registry import planner

    with pytest.raises(ContractError, match="not known"):
        planner("rows_above")
