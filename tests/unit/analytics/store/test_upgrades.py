"""Stores an earlier revision left, on SQLite and PostgreSQL: opening them migrates them to
head, and what the new revisions add (pinned units, the terms log, δ per release) follows
from what they hold."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select

from analytics.store import AggregateStore, ReadOnlyStore, schema
from analytics.store.terms import LEGACY_PIN
from privacy.errors import BudgetTermsChanged, TermsChangeRefused
from tests.unit.analytics.store.helpers import Clock, make_contract, store_at

# --------------------------------------------------------------------------- upgrade from r0001


def _r0001_store(url: str) -> None:
    """A store as r0001 left it: one dataset with spend, no pinned unit, no terms log."""
    store_at(
        url,
        "r0001",
        "INSERT INTO datasets (name, contract_version, epsilon_cap, delta_cap, "
        "epsilon_per_release, policy, \"window\", created_at, updated_at) VALUES "
        "('employees', 3, 3.0, 1e-6, 1.0, 'lifetime', NULL, :now, :now)",
        "INSERT INTO ledger (dataset, run_id, bucket, key, etag, epsilon, delta, state, "
        "created_at, committed_at) VALUES ('employees', 'old-run', 'b', 'k', 'e', 1.0, "
        "1e-7, 'committed', :now, :now)",
    )


def test_a_store_from_before_pinned_units_pins_them_on_the_next_registration(
    store_url: str,
) -> None:
    _r0001_store(store_url)
    store = AggregateStore(store_url)  # migrates to head
    ro = ReadOnlyStore(store_url)
    b = ro.budget("employees")
    assert (b.epsilon_cap, b.epsilon_spent) == (3.0, 1.0)
    assert (b.privacy_unit, b.max_rows_per_unit) == (None, None)  # not pinned yet
    started = ro.terms_changes("employees")
    assert {(e.setting, e.new) for e in started} == {
        ("epsilon_cap", "3"), ("delta_cap", "1e-06"), ("policy", "lifetime"), ("window", "none")
    }
    assert {e.actor for e in started} == {"migration r0002"}
    # a contract that changes the cap is refused, and pins nothing
    with pytest.raises(BudgetTermsChanged, match="epsilon_cap 3 -> 9"):
        store.register_dataset(make_contract(cap=9.0, unit="person", max_rows=6))
    assert ro.budget("employees").max_rows_per_unit is None
    # the next contract with the same caps pins its unit and rows, logged as an entry
    store.register_dataset(make_contract(cap=3.0, unit="person", max_rows=6, version=4))
    b = ro.budget("employees")
    assert (b.privacy_unit, b.max_rows_per_unit) == ("person", 6)
    pins = ro.terms_changes("employees")[:2]
    assert [(e.setting, e.old, e.new, e.reason, e.weakens) for e in reversed(pins)] == [
        ("privacy_unit", None, "person", LEGACY_PIN, False),
        ("max_rows_per_unit", None, "6", LEGACY_PIN, False),
    ]
    assert ro.datasets()[0].contract_version == 4
    # from now on the unit is pinned like the rest
    with pytest.raises(BudgetTermsChanged, match="max_rows_per_unit 6 -> 7"):
        store.register_dataset(make_contract(cap=3.0, unit="person", max_rows=7))
    with store._engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.ledger)).scalar_one() == 1
    store.close()


def test_a_legacy_dataset_needs_unit_and_rows_together_from_an_operator(sqlite_url: str) -> None:
    _r0001_store(sqlite_url)
    store = AggregateStore(sqlite_url)
    with pytest.raises(TermsChangeRefused, match="no pinned privacy unit yet"):
        store.set_terms("employees", max_rows_per_unit=3, actor="ops", reason="x")
    with pytest.raises(TermsChangeRefused, match="no pinned rows per unit yet"):
        store.set_terms("employees", privacy_unit="person", actor="ops", reason="x")
    changes = store.set_terms("employees", privacy_unit="person", max_rows_per_unit=3,
                              actor="ops", reason="x")
    assert [(c.setting, c.old, c.weakens) for c in changes] == [
        ("privacy_unit", None, False), ("max_rows_per_unit", None, False)]
    store.register_dataset(make_contract(cap=3.0, unit="person", max_rows=3))
    store.close()


def test_the_read_only_store_sees_every_new_column(sqlite_url: str) -> None:
    store = AggregateStore(sqlite_url)
    store.register_dataset(make_contract())
    with store._engine.begin() as conn:
        conn.execute(insert(schema.runs).values(
            run_id="r", dataset="employees", bucket="b", key="k", etag="e", status="completed",
            epsilon_spent=0.0, delta_spent=0.0, started_at=Clock().now, updated_at=Clock().now,
            values_nulled=4, notes="4 values set to null"))
    [run] = ReadOnlyStore(sqlite_url).runs()
    assert (run.values_nulled, run.notes) == (4, "4 values set to null")
    store.close()


# --------------------------------------------------------------------------- upgrade from r0002


def test_a_store_from_r0002_gets_the_contract_default_delta_per_release(store_url: str) -> None:
    store_at(
        store_url,
        "r0002",
        "INSERT INTO datasets (name, contract_version, epsilon_cap, delta_cap, "
        "epsilon_per_release, policy, \"window\", created_at, updated_at, privacy_unit, "
        "max_rows_per_unit) VALUES ('employees', 1, 4.0, 1e-6, 0.5, 'lifetime', NULL, "
        ":now, :now, NULL, 1)",
    )
    AggregateStore(store_url).close()  # migrates to head
    b = ReadOnlyStore(store_url).budget("employees")
    assert b.delta_per_release == pytest.approx(1e-6 / 8)  # 8 releases of ε 0.5 in a cap of 4
    assert not b.exhausted
