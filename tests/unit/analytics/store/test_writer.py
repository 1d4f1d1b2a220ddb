"""The aggregate store's schema, migrations and write API, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select

from analytics.store import MIGRATIONS_DIR, AggregateStore, ReadOnlyStore, schema
from privacy.budget import PrivacyLoss
from privacy.errors import BudgetTermsChanged, PipelineError, StorageUnavailable
from tests.unit.analytics.store.helpers import (
    Clock,
    make_contract,
    make_obj,
    make_release_set,
    make_run,
    values_per_set,
)


def _head() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def test_open_migrates_to_head_and_matches_the_schema_module(store_url: str) -> None:
    store = AggregateStore(store_url)
    AggregateStore(store_url).close()  # reopening is a no-op
    with store._engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert ctx.get_current_revision() == _head()
        assert compare_metadata(ctx, schema.metadata) == []
    store.close()


def test_migrations_downgrade_to_base_and_upgrade_again(store_url: str) -> None:
    from alembic import command

    store = AggregateStore(store_url)
    with store._transaction() as conn:
        command.downgrade(store._alembic_config(conn), "base")
    with store._engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is None
    store.close()
    store = AggregateStore(store_url)  # migrates to head again
    store.register_dataset(make_contract())
    store.close()


def test_concurrent_first_opens_migrate_once(store_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_store() -> None:
        try:
            barrier.wait()
            AggregateStore(store_url).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = AggregateStore(store_url)
    with store._engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == _head()
    store.close()


def test_migrations_ship_inside_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("r0001_*.py"))
    assert list((MIGRATIONS_DIR / "versions").glob("r0002_*.py"))
    assert list((MIGRATIONS_DIR / "versions").glob("r0003_*.py"))
    pyproject = (Path(__file__).parents[4] / "pyproject.toml").read_text()
    assert '"*.mako"' in pyproject and '"*.sql"' in pyproject


def test_register_dataset_pins_terms_and_follows_version_and_per_release(
    store_url: str,
) -> None:
    store = AggregateStore(store_url)
    store.register_dataset(make_contract(cap=3.0))
    store.register_dataset(make_contract(cap=3.0))
    # not pinned: the contract version and ε per release follow the contract
    store.register_dataset(make_contract(cap=3.0, per_release=0.5, version=2))
    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert (b.epsilon_cap, b.epsilon_per_release) == (3.0, 0.5)
    assert ro.datasets()[0].contract_version == 2
    # pinned: a contract that raises the cap is refused and changes nothing
    with pytest.raises(BudgetTermsChanged, match=r"epsilon_cap 3 -> 5 \(raises the cap\)"):
        store.register_dataset(make_contract(cap=5.0, version=3))
    assert ro.budget("employees").epsilon_cap == 3.0
    assert ro.datasets()[0].contract_version == 2
    store.close()


def test_publish_writes_release_values_insights_run_and_ledger_together(store_url: str) -> None:
    store = AggregateStore(store_url)
    contract = make_contract(cap=3.0)
    obj = make_obj()
    store.register_dataset(contract)
    assert store.find_published(obj) is None
    res = store.reserve(contract, PrivacyLoss(1.0, 1e-6), obj=obj, run_id="run-1")
    store.record_run(make_run("run-1", obj))
    actual = PrivacyLoss(0.75, 5e-7)  # the release may cost less than reserved, never more
    assert store.publish(res, make_release_set(loss=actual), make_run("run-1", obj)) is True
    assert store.find_published(obj) == "run-1"

    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert b.epsilon_spent == pytest.approx(0.75)
    assert b.delta_spent == pytest.approx(5e-7)
    assert b.epsilon_reserved == 0
    assert b.epsilon_remaining == pytest.approx(2.25)
    [entry] = ro.ledger("employees")
    assert entry.state == "committed" and entry.epsilon == pytest.approx(0.75)
    assert (entry.bucket, entry.key, entry.etag) == (obj.bucket, obj.key, obj.etag)
    rels = ro.releases("employees")
    assert [r.name for r in rels] == ["comparison:efficiency:team", "summary"]
    assert sum(len(r.values) for r in rels) == values_per_set()
    comp = rels[0]
    assert comp.values[0].group == {"team": "Atlas"}
    assert comp.insights[1] == "second insight"
    assert comp.epsilon == pytest.approx(0.375) and comp.run_id == "run-1"
    [run] = ro.runs()
    assert run.status == "completed" and run.epsilon_spent == pytest.approx(0.75)
    assert run.rows_in == 100 and run.finished_at is not None
    store.close()


def test_publish_refuses_a_loss_above_the_reservation(store_url: str) -> None:
    store = AggregateStore(store_url)
    contract = make_contract(cap=3.0)
    obj = make_obj()
    res = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-1")
    too_much = make_release_set(loss=PrivacyLoss(1.5, 1e-7))
    with pytest.raises(PipelineError, match="exceeds the reserved"):
        store.publish(res, too_much, make_run("run-1", obj))
    ro = ReadOnlyStore(store_url)
    assert ro.releases("employees") == []
    assert [e.state for e in ro.ledger("employees")] == ["cancelled"]
    assert ro.budget("employees").epsilon_spent == 0
    assert store.find_published(obj) is None
    store.close()


def test_publish_refuses_a_release_set_for_another_dataset(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    res = store.reserve(make_contract(), PrivacyLoss(1.0), obj=make_obj(), run_id="r")
    with pytest.raises(PipelineError, match="for dataset 'other'"):
        store.publish(res, make_release_set("other"), make_run("r", make_obj()))


def test_cancel_frees_the_reservation_and_is_a_no_op_after_commit(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    contract = make_contract(cap=2.0)
    a, b = make_obj(name="a.csv", etag="1"), make_obj(name="b.csv", etag="2")
    ra = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=a, run_id="ra")
    rb = store.reserve(contract, PrivacyLoss(1.0, 1e-7), obj=b, run_id="rb")
    store.cancel(rb)
    assert ReadOnlyStore(sqlite_url).budget("employees").epsilon_reserved == 1.0
    assert store.publish(ra, make_release_set(), make_run("ra", a))
    store.cancel(ra)  # already committed: nothing changes
    states = {e.run_id: e.state for e in ReadOnlyStore(sqlite_url).ledger("employees")}
    assert states == {"ra": "committed", "rb": "cancelled"}
    with pytest.raises(PipelineError, match="cancelled"):
        store.publish(rb, make_release_set(), make_run("rb", b))


def test_record_run_upserts_by_run_id_and_keeps_the_start_time(store_url: str) -> None:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    obj = make_obj()
    first = make_run("run-9", obj, started_at=clock.now)
    store.record_run(first)
    again = make_run("run-9", obj, started_at=clock.now + timedelta(minutes=5))
    again.status = "rejected"
    again.reason = "3 rows have 9 fields, the header has 7"
    again.finished_at = clock.now + timedelta(minutes=6)
    store.record_run(again)
    [row] = ReadOnlyStore(store_url).runs()
    assert row.status == "rejected" and row.reason == again.reason
    assert row.started_at == first.started_at
    assert row.finished_at == again.finished_at
    assert (row.values_nulled, row.notes) == (None, None)
    store.close()


def test_runs_carry_values_nulled_and_notes(store_url: str) -> None:
    store = AggregateStore(store_url)
    obj = make_obj()
    note = "7 values set to null in 2 columns (unreadable or outside public keys)"
    run = make_run("run-1", obj, values_nulled=7, notes=note)
    store.record_run(run)
    assert ReadOnlyStore(store_url).runs()[0].values_nulled == 7
    res = store.reserve(make_contract(), PrivacyLoss(1.0, 1e-7), obj=obj, run_id="run-1")
    run.values_nulled = 9
    assert store.publish(res, make_release_set(), run)
    [row] = ReadOnlyStore(store_url).runs()
    assert (row.status, row.values_nulled, row.notes) == ("completed", 9, note)
    store.close()


def test_calibration_cache_round_trips(store_url: str) -> None:
    store = AggregateStore(store_url)
    assert store.calibration_get("fp:summary:count") is None
    store.calibration_put("fp:summary:count", 2.5)
    store.calibration_put("fp:summary:count", 3.5)
    assert store.calibration_get("fp:summary:count") == 3.5
    with pytest.raises(PipelineError):
        store.calibration_put("k", float("nan"))
    store.close()


def test_unreachable_postgres_is_storage_unavailable_without_the_password() -> None:
    with pytest.raises(StorageUnavailable) as err:
        AggregateStore("postgresql+psycopg://pa:s3cret-pw@127.0.0.1:1/aggregates")
    message = str(err.value)
    assert "s3cret-pw" not in message
    assert "127.0.0.1:1/aggregates" in message and "PA_STORE_URL" in message


def test_a_sqlite_store_creates_its_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'state' / 'aggregates.db'}"
    AggregateStore(url).close()
    assert (tmp_path / "new" / "state" / "aggregates.db").is_file()


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(PipelineError, match="SQLite file path"):
        AggregateStore("sqlite://")


def test_the_store_never_holds_a_row_level_column(store_url: str) -> None:
    """Every table is aggregates, counts or bookkeeping: pin the column list."""
    store = AggregateStore(store_url)
    with store._engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(schema.published_values)).scalar()
    assert n == 0
    assert set(schema.published_values.c.keys()) == {
        "id", "release_id", "metric", "column", "group_json", "value", "lower", "upper", "scale"
    }
    store.close()
