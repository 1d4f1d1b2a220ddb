"""zCDP accounting (``budget.accounting: zcdp``): Gaussian noise through OpenDP's
zero-concentrated measures, ρ per release adding up in the ledger, the total held to the
(ε, δ) cap through OpenDP's conversion."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from analytics.analyses import release_analyses
from analytics.store import AggregateStore, ReadOnlyStore, schema
from privacy.budget import PrivacyLoss, ZCDPLoss, zcdp_epsilon, zcdp_rho_for
from privacy.contract import Contract
from privacy.errors import BudgetExhausted, ContractError, PipelineError
from privacy.release import QuerySpec, ReleaseEngine, count_agg, prepare_frame
from tests.unit.analytics.store.helpers import Clock, make_obj, make_release_set, make_run
from tests.unit.contracts import contract_of

#: the issue's scenario: a lifetime cap of (ε 10, δ 1e-6) spread over 365 releases
CAP, DELTA, RELEASES = 10.0, 1e-6, 365


def _contract(budget: dict[str, Any], release: dict[str, Any] | None = None) -> Contract:
    contract = contract_of(
        "daily",
        {"team": {"role": "dimension", "keys": ["a", "b"]},
         "x": {"role": "measure", "type": "float", "bounds": [0, 10]}},
        [{"kind": "summary"}, {"kind": "comparison", "measure": "x", "by": "team"}],
        budget=budget,
    )
    if release is None:
        return contract
    return Contract.model_validate({**contract.model_dump(mode="json"), "release": release})


def _daily(accounting: str) -> Contract:
    if accounting == "pure":
        budget = {"epsilon_cap": CAP, "delta": DELTA, "epsilon_per_release": CAP / RELEASES}
    else:
        rho = zcdp_rho_for(CAP, DELTA / 2) / RELEASES
        budget = {"epsilon_cap": CAP, "delta": DELTA, "accounting": "zcdp", "rho_per_release": rho}
    return _contract(budget)


def _count_noise(contract: Contract) -> Any:
    """The noise of a row count spending the whole of one release."""
    frame = pl.LazyFrame({"team": ["a", "b"] * 50, "x": [1.0] * 100})
    prepared = prepare_frame(frame, contract, {})
    try:
        engine = ReleaseEngine(contract, prepared)
        result = engine.release(QuerySpec("rows", (count_agg(),)), contract.budget.release_loss)
    finally:
        prepared.close()
    return result.noise["len"], result.loss


def test_365_daily_releases_get_a_count_noise_within_12_times_the_sensitivity() -> None:
    zcdp, pure = _daily("zcdp"), _daily("pure")
    assert zcdp.budget.releases_allowed == RELEASES == pure.budget.releases_allowed
    noise, loss = _count_noise(zcdp)
    assert noise.distribution == "Integer Gaussian" and isinstance(loss, ZCDPLoss)
    assert loss.rho <= zcdp.budget.rho_per_release * (1 + 1e-9)  # type: ignore[operator]
    sd = math.sqrt(noise.variance)
    assert sd <= 12.0, sd  # sensitivity 1: one person, one row
    laplace, _ = _count_noise(pure)
    assert laplace.distribution == "Integer Laplace"
    assert math.sqrt(laplace.variance) > 4 * sd  # pure ε: about 51.6x, against 11.1x


def test_the_ledger_of_365_releases_never_converts_above_the_cap(tmp_path: Path) -> None:
    contract = _daily("zcdp")
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    clock = Clock(datetime(2026, 1, 1, 6, tzinfo=UTC))
    store = AggregateStore(url, clock=clock)
    ro = ReadOnlyStore(url, clock=clock)
    loss = contract.budget.release_loss
    assert isinstance(loss, ZCDPLoss)
    published = 0
    for day in range(RELEASES + 5):
        obj = make_obj("daily", name=f"d{day}.csv", etag=f"e{day}")
        try:
            res = store.reserve(contract, loss, obj=obj, run_id=f"run-{day}")
        except BudgetExhausted as exc:
            assert "OpenDP's conversion of zCDP" in str(exc) and "ρ" in str(exc)
            break
        assert store.publish(res, make_release_set("daily", loss=loss), make_run(f"run-{day}", obj))
        published += 1
        rho, delta = _committed(store)
        assert zcdp_epsilon(rho, DELTA - delta) <= CAP  # the ledger's own total
        if day % 50 == 0:  # what the budget reports is that total
            b = ro.budget("daily")
            assert b.rho_spent == pytest.approx(rho)
            assert b.epsilon_spent == pytest.approx(zcdp_epsilon(rho, DELTA - delta))
        clock.advance(days=1)
    # the cap pays for at least the releases the contract plans (the thresholds' δ spent
    # here is under the half of δ it sets aside for them), and never for more than fit
    assert published >= RELEASES
    b = ro.budget("daily")
    assert b.exhausted and b.releases_remaining == 0 and b.accounting == "zcdp"
    assert b.rho_spent == pytest.approx(published * loss.rho)
    over = zcdp_epsilon((published + 1) * loss.rho, DELTA - (published + 1) * loss.delta)
    assert over > CAP  # one more would have gone over
    assert b.releases_per_day == pytest.approx(1.0, rel=0.01)
    assert b.runs_out_on == clock().date()  # nothing left: today
    entry = ro.ledger("daily", limit=1)[0]
    assert entry.rho == pytest.approx(loss.rho)
    assert entry.epsilon == pytest.approx(zcdp_epsilon(loss.rho, DELTA - loss.delta))


def _committed(store: AggregateStore) -> tuple[float, float]:
    """Σρ and Σδ of the committed ledger entries, read from the table."""
    with store._engine.connect() as conn:
        rho, delta = conn.execute(
            select(func.sum(schema.ledger.c.rho), func.sum(schema.ledger.c.delta)).where(
                schema.ledger.c.state == "committed"
            )
        ).one()
    return float(rho), float(delta)


def test_the_budget_shows_releases_remaining_and_the_run_out_date(tmp_path: Path) -> None:
    contract = _daily("zcdp")
    url = f"sqlite:///{tmp_path / 'aggregates.db'}"
    clock = Clock(datetime(2026, 1, 1, 6, tzinfo=UTC))
    store = AggregateStore(url, clock=clock)
    loss = contract.budget.release_loss
    for day in range(10):  # one release every other day
        obj = make_obj("daily", name=f"d{day}.csv", etag=f"e{day}")
        res = store.reserve(contract, loss, obj=obj, run_id=f"run-{day}")
        store.publish(res, make_release_set("daily", loss=loss), make_run(f"run-{day}", obj))
        clock.advance(days=2)
    b = ReadOnlyStore(url, clock=clock).budget("daily")
    assert b.releases_remaining is not None and b.releases_remaining >= RELEASES - 10
    assert b.releases_per_day == pytest.approx(0.5)
    assert b.runs_out_on == (clock() + timedelta(days=2 * b.releases_remaining)).date()
    assert 0 < b.epsilon_spent < b.epsilon_spent + b.epsilon_per_release <= CAP


def test_a_reservation_of_the_other_accounting_is_refused(tmp_path: Path) -> None:
    store = AggregateStore(f"sqlite:///{tmp_path / 'a.db'}")
    contract = _daily("zcdp")
    with pytest.raises(PipelineError, match="accounted under 'zcdp'"):
        store.reserve(contract, PrivacyLoss(0.1), obj=make_obj("daily"), run_id="r1")


def test_the_accounting_of_a_dataset_that_has_spent_cannot_change(tmp_path: Path) -> None:
    store = AggregateStore(f"sqlite:///{tmp_path / 'a.db'}")
    pure, zcdp = _daily("pure"), _daily("zcdp")
    store.register_dataset(zcdp)  # nothing spent yet: the accounting may still change
    store.register_dataset(pure)
    res = store.reserve(pure, pure.budget.release_loss, obj=make_obj("daily"), run_id="r1")
    store.publish(res, make_release_set("daily", loss=pure.budget.release_loss),
                  make_run("r1", make_obj("daily")))
    with pytest.raises(ContractError, match="cannot change"):
        store.register_dataset(zcdp)
    assert ReadOnlyStore(f"sqlite:///{tmp_path / 'a.db'}").budget("daily").accounting == "pure"


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"epsilon_cap": 10, "accounting": "zcdp"}, "needs rho_per_release"),
        ({"epsilon_cap": 10, "accounting": "zcdp", "rho_per_release": 0.1,
          "epsilon_per_release": 0.5}, "not epsilon_per_release"),
        ({"epsilon_cap": 10, "delta": 0, "accounting": "zcdp", "rho_per_release": 0.1},
         "needs delta > 0"),
        ({"epsilon_cap": 1, "accounting": "zcdp", "rho_per_release": 50}, "more than the cap"),
        ({"epsilon_cap": 10, "rho_per_release": 0.1}, "needs accounting: zcdp"),
    ],
)
def test_a_zcdp_budget_is_checked(budget: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _contract(budget)


def test_release_epsilon_is_refused_under_zcdp() -> None:
    budget = {"epsilon_cap": 10, "accounting": "zcdp", "rho_per_release": 0.01}
    with pytest.raises(ValidationError, match=r"drop release\.epsilon"):
        _contract(budget, {"epsilon": 0.5})


def test_a_release_under_zcdp_spends_its_rho_with_gaussian_noise() -> None:
    contract = _daily("zcdp")
    frame = pl.LazyFrame({"team": ["a", "b"] * 200, "x": [float(i % 10) for i in range(400)]})
    rs = release_analyses(frame, contract, contract.budget.release_loss)
    assert isinstance(rs.loss, ZCDPLoss)
    assert rs.loss.fits_within(contract.budget.release_loss)  # type: ignore[arg-type]
    mechanisms = {r.mechanism for r in rs.releases}
    assert mechanisms and all("laplace" not in m for m in mechanisms), mechanisms
    paid = [r.loss for r in rs.releases if r.loss is not None]
    assert all(isinstance(x, ZCDPLoss) for x in paid)
    assert sum(x.rho for x in paid) == pytest.approx(rs.loss.rho, rel=1e-6)  # type: ignore[union-attr]
