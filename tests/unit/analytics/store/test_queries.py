"""The read-only query API the dashboard and the CLI use."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from analytics.store import AggregateStore, ReadOnlyStore, UnknownDataset, schema
from privacy.budget import PrivacyLoss
from privacy.errors import BudgetExhausted, StorageUnavailable
from tests.unit.analytics.store.helpers import (
    Clock,
    make_contract,
    make_obj,
    make_release_set,
    make_run,
    publish_file,
    values_per_set,
)

ROOT = Path(__file__).resolve().parents[4]


def _publish(store: AggregateStore, name: str, *, dataset: str = "employees", eps: float = 1.0,
             bump: float = 0.0, cap: float = 10.0) -> str:
    return publish_file(store, make_contract(dataset, cap=cap), name, PrivacyLoss(eps, 1e-7),
                        bump=bump, started_at=store._clock())


@pytest.fixture
def filled(store_url: str) -> str:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    _publish(store, "a.csv", bump=0.0)
    clock.advance(minutes=5)
    _publish(store, "b.csv", bump=10.0)
    clock.advance(minutes=5)
    _publish(store, "c.csv", dataset="sales", cap=2.0, eps=2.0)
    clock.advance(minutes=5)
    rejected = make_run("run-bad", make_obj(name="bad.csv"), started_at=clock.now)
    rejected.status = "rejected"
    rejected.reason = "column 'efficiency': 3 of 10 values are not numbers"
    store.record_run(rejected)
    store.close()
    return store_url


# --------------------------------------------------------------------------- read-only


def test_the_read_only_connection_refuses_writes(filled: str) -> None:
    ro = ReadOnlyStore(filled)
    now = Clock().now
    with pytest.raises(sa_exc.DBAPIError, match=r"(?i)read-?only"), ro._engine.begin() as conn:
        conn.execute(insert(schema.calibrations).values(key="k", scale=1.0, created_at=now))
    with pytest.raises(sa_exc.DBAPIError), ro._engine.begin() as conn:
        conn.execute(text("DELETE FROM releases"))
    assert len(ro.releases("employees")) == 4  # nothing changed


def test_the_read_only_role_sql_lets_a_reader_select_but_never_write(
    pg_url: Callable[[], str],
) -> None:
    url = make_url(pg_url())
    store = AggregateStore(url.render_as_string(hide_password=False))
    _publish(store, "a.csv")
    store.close()
    admin = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database,
             "autocommit": True}
    with psycopg.connect(**admin) as conn:
        existed = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'pa_reader'").fetchone()
        conn.execute((ROOT / "analytics/sql/readonly_role.sql").read_text())
    try:
        reader = url.set(username="pa_reader").render_as_string(hide_password=False)
        assert ReadOnlyStore(reader).budget("employees").epsilon_spent == 1.0
        # even a client that switches its transaction to read-write is refused by the role
        with psycopg.connect(**{**admin, "user": "pa_reader"}) as conn:
            conn.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM ledger")
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute("DROP OWNED BY pa_reader")  # also revokes CONNECT on the database
            if not existed:
                conn.execute("DROP ROLE pa_reader")


def test_a_missing_sqlite_file_says_nothing_was_published_yet(tmp_path: Path) -> None:
    ro = ReadOnlyStore(f"sqlite:///{tmp_path / 'none' / 'aggregates.db'}")  # does not connect
    with pytest.raises(StorageUnavailable, match="no data has been published yet") as err:
        ro.datasets()
    assert "privacy-analytics up" in str(err.value)
    assert not (tmp_path / "none").exists()  # a reader never creates anything


def test_an_empty_sqlite_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "aggregates.db").write_bytes(b"")
    with pytest.raises(StorageUnavailable, match="privacy-analytics up"):
        ReadOnlyStore(f"sqlite:///{tmp_path / 'aggregates.db'}").runs()


def test_an_unmigrated_postgres_database_says_what_to_do(pg_url: Callable[[], str]) -> None:
    with pytest.raises(StorageUnavailable, match="tables do not exist"):
        ReadOnlyStore(pg_url()).datasets()


def test_an_unreachable_store_is_storage_unavailable_without_the_password() -> None:
    ro = ReadOnlyStore("postgresql+psycopg://reader:hunter2@127.0.0.1:1/aggregates")
    with pytest.raises(StorageUnavailable) as err:
        ro.change_marker()
    assert "hunter2" not in str(err.value) and "127.0.0.1:1" in str(err.value)


def test_queries_module_has_no_write_path_and_no_flows_import() -> None:
    source = (ROOT / "analytics/store/queries.py").read_text()
    for word in ("insert(", "update(", "delete(", "AggregateStore", "from flows", "import flows",
                 "os.environ", "print("):
        assert word not in source, word
    code = (
        "import sys, analytics.store.queries; "
        "bad = [m for m in sys.modules if m.startswith(('flows', 'analytics.store.writer', "
        "'analytics.store.pinning', 'analytics.store.runs', 'analytics.store.release_sets', "
        "'analytics.store.migrations', 'alembic'))]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- queries


def test_datasets_summarise_budget_releases_and_runs(filled: str) -> None:
    by_name = {d.name: d for d in ReadOnlyStore(filled).datasets()}
    assert list(by_name) == ["employees", "sales"]
    emp, sales = by_name["employees"], by_name["sales"]
    assert emp.releases == 4 and emp.runs == 3  # two completed, one rejected
    assert emp.rows_processed == 200  # completed runs only
    assert (emp.epsilon_cap, emp.epsilon_spent, emp.epsilon_remaining) == (10.0, 2.0, 8.0)
    assert not emp.exhausted and emp.last_release_at is not None
    assert emp.policy == "lifetime" and emp.contract_version == 1
    assert sales.exhausted and sales.epsilon_remaining == 0


def test_budget_and_ledger(filled: str) -> None:
    ro = ReadOnlyStore(filled)
    b = ro.budget("employees")
    assert (b.epsilon_cap, b.epsilon_spent, b.epsilon_reserved) == (10.0, 2.0, 0.0)
    assert b.delta_spent == pytest.approx(2e-7) and b.delta_cap == 1e-6
    entries = ro.ledger("employees")
    assert [e.run_id for e in entries] == ["run-b.csv", "run-a.csv"]  # newest first
    assert all(e.state == "committed" and e.committed_at for e in entries)
    assert len(ro.ledger("employees", limit=1)) == 1


def test_releases_come_with_values_and_insights_newest_first(filled: str) -> None:
    rels = ReadOnlyStore(filled).releases("employees")
    assert [r.run_id for r in rels] == ["run-b.csv"] * 2 + ["run-a.csv"] * 2
    assert sum(len(r.values) for r in rels) == 2 * values_per_set()
    summary = next(r for r in rels if r.name == "summary")
    count = summary.values[0]
    assert count.metric == "count" and count.value == 110.0
    assert (count.lower, count.upper, count.scale) == (106.0, 114.0, 2.0)
    assert summary.epsilon == pytest.approx(0.5) and summary.mechanism == "laplace"
    assert len(ReadOnlyStore(filled).releases("employees", limit=1)) == 1


def test_latest_values_take_the_latest_release_of_each_analysis(filled: str) -> None:
    rows = ReadOnlyStore(filled).latest_values("employees")
    assert {r.release_name for r in rows} == {"summary", "comparison:efficiency:team"}
    assert len(rows) == values_per_set()
    count = next(r for r in rows if r.metric == "count")
    assert count.value == 110.0  # from b.csv, the later file
    groups = [r.group for r in rows if r.analysis == "comparison"]
    assert {"team": "Atlas"} in groups and {"a": "Borealis", "b": "Atlas"} in groups
    assert all(r.epsilon is not None for r in rows)


def test_insights_latest_first(filled: str) -> None:
    texts = ReadOnlyStore(filled).insights("employees")
    assert len(texts) == 6 and texts[0].startswith("Borealis")
    assert len(ReadOnlyStore(filled).insights("employees", limit=2)) == 2


def test_runs_newest_first_with_filter_and_limit(filled: str) -> None:
    ro = ReadOnlyStore(filled)
    runs = ro.runs()
    assert [r.run_id for r in runs] == ["run-bad", "run-c.csv", "run-b.csv", "run-a.csv"]
    assert runs[0].status == "rejected" and "not numbers" in (runs[0].reason or "")
    assert [r.run_id for r in ro.runs(dataset="sales")] == ["run-c.csv"]
    assert len(ro.runs(limit=2)) == 2


def test_terms_changes_newest_first_per_dataset_or_all(filled: str) -> None:
    store = AggregateStore(filled, clock=Clock())
    store.set_terms("sales", epsilon_cap=1.0, actor="ops", reason="tighter")
    store.close()
    ro = ReadOnlyStore(filled)
    every = ro.terms_changes()
    assert len(every) == 6 + 6 + 1  # two first registrations and one change
    assert [c.id for c in every] == sorted((c.id for c in every), reverse=True)
    newest = every[0]
    assert (newest.dataset, newest.setting, newest.old, newest.new) == (
        "sales", "epsilon_cap", "2", "1")
    assert (newest.actor, newest.reason, newest.weakens, newest.forced) == (
        "ops", "tighter", False, False)
    assert {c.dataset for c in ro.terms_changes("employees")} == {"employees"}
    assert len(ro.terms_changes(limit=2)) == 2
    json.dumps([c.setting for c in every])
    summary = {d.name: d for d in ro.datasets()}["sales"]
    assert (summary.epsilon_cap, summary.privacy_unit, summary.max_rows_per_unit) == (1.0, None, 1)
    assert summary.rows_are_people


def test_unknown_dataset_names_the_known_ones(filled: str) -> None:
    with pytest.raises(UnknownDataset, match="known: employees, sales"):
        ReadOnlyStore(filled).budget("employes")


def test_change_marker_moves_on_every_write(sqlite_url: str) -> None:
    clock = Clock()
    store = AggregateStore(sqlite_url, clock=clock)
    ro = ReadOnlyStore(sqlite_url)
    markers = [ro.change_marker()]
    obj = make_obj()
    run = make_run("run-1", obj, started_at=clock.now)
    store.record_run(run)
    markers.append(ro.change_marker())
    res = store.reserve(make_contract(), PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-1")
    markers.append(ro.change_marker())
    store.cancel(res)
    markers.append(ro.change_marker())
    clock.advance(seconds=1)
    res = store.reserve(make_contract(), PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-1")
    store.publish(res, make_release_set(), run)
    markers.append(ro.change_marker())
    clock.advance(seconds=1)
    run.status = "failed"
    store.record_run(run)
    markers.append(ro.change_marker())
    store.set_terms("employees", epsilon_cap=2.0, actor="ops", reason="tighter")
    markers.append(ro.change_marker())
    assert len(set(markers)) == len(markers), markers
    assert ro.change_marker() == markers[-1]  # stable while nothing changes
    json.dumps(markers)  # the dashboard keeps it in a dcc.Store


def test_budget_counts_live_reservations_and_shows_expired_ones(sqlite_url: str) -> None:
    clock = Clock()
    store = AggregateStore(sqlite_url, clock=clock)
    store.reserve(make_contract(cap=2.0), PrivacyLoss(1.5, 1e-7), obj=make_obj(), run_id="r")
    ro = ReadOnlyStore(sqlite_url, clock=clock)
    b = ro.budget("employees")
    assert (b.epsilon_spent, b.epsilon_reserved, b.epsilon_remaining) == (0.0, 1.5, 2.0)
    assert b.exhausted  # 0.5 left after the reservation, less than ε per release (1.0)
    with pytest.raises(BudgetExhausted):
        store.reserve(make_contract(cap=2.0), PrivacyLoss(1.0), obj=make_obj(name="x"),
                      run_id="x")
    clock.advance(minutes=31)
    assert ro.budget("employees").epsilon_reserved == 0
    assert [e.state for e in ro.ledger("employees")] == ["expired"]
    ro_short = ReadOnlyStore(sqlite_url, clock=clock, reservation_timeout=timedelta(hours=2))
    assert [e.state for e in ro_short.ledger("employees")] == ["reserved"]
