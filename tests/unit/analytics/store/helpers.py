"""Builders shared by the store, ledger and query tests (and their worker processes)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from analytics.store import MIGRATIONS_DIR, AggregateStore, ObjectVersion, Reservation, RunRecord
from privacy.budget import Loss, PrivacyLoss, zcdp_epsilon
from privacy.contract import Contract
from privacy.errors import BudgetExhausted
from privacy.results import PublishedValue, Release, ReleaseSet

BUCKET = "pa-test"


def make_contract(
    dataset: str = "employees",
    *,
    cap: float = 3.0,
    delta: float = 1e-6,
    per_release: float = 1.0,
    delta_per_release: float | None = None,
    policy: str = "lifetime",
    window: str | None = None,
    version: int = 1,
    unit: str | None = None,
    max_rows: int = 1,
    rho: float | None = None,
) -> Contract:
    """A small contract; rows are people unless ``unit`` names the person column (then
    with ``max_rows`` rows per person); under zCDP accounting when ``rho`` (ρ per release)
    is given."""
    budget: dict[str, Any] = {
        "epsilon_cap": cap,
        "delta": delta,
        "policy": policy,
    }
    if rho is None:
        budget["epsilon_per_release"] = per_release
    else:
        budget.update(accounting="zcdp", rho_per_release=rho)
    if window is not None:
        budget["window"] = window
    if delta_per_release is not None:
        budget["delta_per_release"] = delta_per_release
    columns: dict[str, Any] = {
        "team": {"role": "dimension", "keys": ["Atlas", "Borealis"]},
        "efficiency": {"role": "measure", "type": "float", "bounds": [0, 2]},
    }
    who: dict[str, Any] = {"rows_are_people": True}
    if unit is not None:
        columns[unit] = {"role": "identifier", "action": "pseudonymize"}
        who = {"privacy_unit": unit, "max_rows_per_unit": max_rows}
    return Contract.model_validate(
        {
            "dataset": dataset,
            **who,
            "version": version,
            "budget": budget,
            "columns": columns,
        }
    )


def make_obj(
    dataset: str = "employees", name: str = "a.csv", etag: str = "etag-1"
) -> ObjectVersion:
    return ObjectVersion(BUCKET, f"landing/{dataset}/{name}", etag, size=1234)


def make_run(run_id: str, obj: ObjectVersion, **kw: Any) -> RunRecord:
    return RunRecord(run_id=run_id, dataset=obj.dataset, obj=obj, rows_in=100, rows_out=98,
                     rows_suppressed=2, columns_dropped=2, columns_pseudonymized=1, **kw)


def make_release_set(
    dataset: str = "employees", loss: Loss | None = None, *, version: int = 1,
    bump: float = 0.0,
) -> ReleaseSet:
    loss = loss or PrivacyLoss(1.0, 1e-7)
    half = loss.part(0.5, loss.delta / 2)
    summary = Release(
        analysis="summary",
        name="summary",
        mechanism="laplace",
        loss=half,
        values=[
            PublishedValue("count", 100.0 + bump, 96.0 + bump, 104.0 + bump, 2.0),
            PublishedValue("mean", 1.1 + bump, 1.0 + bump, 1.2 + bump, 0.05, column="efficiency"),
        ],
        insights=["Average efficiency: 1.1 (95% CI 1.0–1.2)"],
    )
    comparison = Release(
        analysis="comparison",
        name="comparison:efficiency:team",
        mechanism="laplace",
        loss=half,
        values=[
            PublishedValue("mean", 1.0, 0.9, 1.1, 0.05, column="efficiency",
                           group={"team": "Atlas"}),
            PublishedValue("mean", 1.2, 1.1, 1.3, 0.05, column="efficiency",
                           group={"team": "Borealis"}),
            PublishedValue("difference", 0.2, 0.05, 0.35, None, column="efficiency",
                           group={"a": "Borealis", "b": "Atlas"}),
        ],
        insights=["Borealis's efficiency is 20% higher than Atlas's (95% CI 5–35%)",
                  "second insight"],
    )
    return ReleaseSet(dataset=dataset, contract_version=version, loss=loss,
                      releases=[summary, comparison])


def publish_file(store: AggregateStore, contract: Contract, name: str, loss: PrivacyLoss, *,
                 bump: float = 0.0, **run: Any) -> str:
    """One pipeline run of a new file ``name`` of the contract's dataset: reserve ``loss``,
    publish ``make_release_set`` (values moved by ``bump``) with the run record ``make_run``
    makes of ``run``; returns the run id."""
    obj = make_obj(contract.dataset, name=name, etag=f"etag-{name}")
    run_id = f"run-{name}"
    res = store.reserve(contract, loss, obj=obj, run_id=run_id)
    rs = make_release_set(contract.dataset, loss, bump=bump)
    assert store.publish(res, rs, make_run(run_id, obj, **run))
    return run_id


def values_per_set() -> int:
    return sum(len(r.values) for r in make_release_set().releases)


def store_at(url: str, revision: str, *statements: str) -> None:
    """A store as a writer of ``revision`` left it: migrated up to ``revision`` only, then
    ``statements`` run on it (``:now`` is 2024-05-01, naive UTC on SQLite as the store keeps
    it there)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    now = datetime(2024, 5, 1, tzinfo=UTC)
    if url.startswith("sqlite"):
        now = now.replace(tzinfo=None)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        for statement in statements:
            conn.execute(text(statement), {"now": now})
    engine.dispose()


class Clock:
    """A settable clock for window and expiry tests."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2024, 5, 17, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now = self.now + timedelta(**kw)


# --------------------------------------------------------------------------- worker processes


def publish_worker_file(store: AggregateStore, res: Reservation, i: int) -> bool:
    """Publish worker ``i``'s release set (its values moved by ``i``) under ``res``, as run
    ``run-<i>``."""
    rs = make_release_set(loss=res.loss, bump=float(i))
    return store.publish(res, rs, make_run(f"run-{i}", res.obj))


#: zCDP in the concurrency tests: ρ per release, and a cap that pays for exactly 3 of them
#: (OpenDP's conversion of 3ρ at the δ left after three releases' 1e-7 is within it, 4ρ's
#: is not)
ZCDP_RHO = 0.1


def zcdp_cap_for(releases: int, rho: float = ZCDP_RHO, delta: float = 1e-6) -> float:
    """An ε cap between what ``releases`` and ``releases`` + 1 releases convert to."""
    at = [zcdp_epsilon(n * rho, delta - n * 1e-7) for n in (releases, releases + 1)]
    return (at[0] + at[1]) / 2


def release_once(url: str, cap: float, i: int, barrier: Any = None, same_object: bool = False,
                 hold: float = 0.05, accounting: str = "pure") -> str:
    """One pipeline release: reserve ε=1 (ρ=``ZCDP_RHO`` under zCDP, with ``cap`` then the
    number of releases the cap pays for), 'compute' for ``hold`` s, publish."""
    store = AggregateStore(url)
    try:
        if accounting == "zcdp":
            contract = make_contract(cap=zcdp_cap_for(int(cap)), rho=ZCDP_RHO)
        else:
            contract = make_contract(cap=cap)
        obj = make_obj(name="same.csv" if same_object else f"f{i}.csv",
                       etag="etag-same" if same_object else f"etag-{i}")
        if barrier is not None:
            barrier.wait(timeout=60)
        try:
            loss = contract.budget.release_loss.part(1.0, 1e-7)
            res = store.reserve(contract, loss, obj=obj, run_id=f"run-{i}")
        except BudgetExhausted:
            return "exhausted"
        time.sleep(hold)
        return "published" if publish_worker_file(store, res, i) else "duplicate"
    finally:
        store.close()


def process_worker(
    url: str, cap: float, i: int, barrier: Any, results: Any, accounting: str = "pure"
) -> None:
    results.put((i, release_once(url, cap, i, barrier, accounting=accounting)))


def crash_worker(url: str, cap: float) -> None:
    """Reserve, then get SIGKILLed inside publish's transaction after the releases are in."""
    store = AggregateStore(url)
    contract = make_contract(cap=cap)
    obj = make_obj(name="crash.csv", etag="etag-crash")
    res = store.reserve(contract, PrivacyLoss(cap, 1e-7), obj=obj, run_id="run-crash")
    original = AggregateStore._insert_releases

    def insert_then_die(*args: Any, **kw: Any) -> None:
        original(*args, **kw)
        os.kill(os.getpid(), signal.SIGKILL)

    AggregateStore._insert_releases = staticmethod(insert_then_die)  # type: ignore[assignment]
    store.publish(res, make_release_set(loss=PrivacyLoss(cap, 1e-7)), make_run("run-crash", obj))
