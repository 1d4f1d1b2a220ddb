"""Analyses' ε weights: each release's ε is split over the analyses in proportion to their
contract weights (equal by default), the quality release keeps its fixed share, and the
total never exceeds the release's loss."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.analyses import release_analyses
from analytics.analyses.quality import QUALITY_SHARE
from flows.demo import employee_frame
from privacy.budget import PrivacyLoss
from privacy.contract import Contract, load_contract
from privacy.masking import release_input

ROOT = Path(__file__).resolve().parents[3]


def _weighted(weights: dict[str, float]) -> Contract:
    c = load_contract(ROOT / "contracts" / "employees.yaml", "employees")
    analyses = [a.model_copy(update={"weight": weights.get(a.kind, 1.0)}) for a in c.analyses]
    return c.model_copy(update={"analyses": analyses})


@pytest.fixture(scope="module")
def masked() -> object:
    c = load_contract(ROOT / "contracts" / "employees.yaml", "employees")
    return release_input(employee_frame(employees=300, rows=1500).lazy(), c, b"k" * 32).collect()


@pytest.mark.parametrize("summary_weight", [1.0, 4.0])
def test_epsilon_follows_the_weights(masked: object, summary_weight: float) -> None:
    contract = _weighted({"summary": summary_weight})
    loss = PrivacyLoss(1.0, 1e-7)
    rs = release_analyses(masked.lazy(), contract, loss)  # type: ignore[attr-defined]
    eps = {r.name: r.loss.epsilon for r in rs.releases if r.loss is not None}
    assert rs.loss.fits_within(loss)
    assert eps.pop("quality") == pytest.approx(QUALITY_SHARE * loss.epsilon, rel=1e-6)
    paid = [a for a in contract.analyses if a.kind != "forecast"]
    unit = (1 - QUALITY_SHARE) * loss.epsilon / sum(a.weight for a in paid)
    assert eps.pop("summary") == pytest.approx(summary_weight * unit, rel=1e-6)
    assert eps and all(e == pytest.approx(unit, rel=1e-6) for e in eps.values())


def test_weights_are_positive_and_finite() -> None:
    from pydantic import ValidationError

    from privacy.contract import SummaryAnalysis

    for bad in (0, -1, float("inf"), 1e9):
        with pytest.raises(ValidationError):
            SummaryAnalysis(weight=bad)
