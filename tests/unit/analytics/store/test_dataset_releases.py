"""Dataset releases in the store: which files a dataset has, what a release over them
records, and how readers find release sets and their history (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from analytics.store import AggregateStore, ReadOnlyStore
from analytics.store.records import Coverage
from privacy.budget import PrivacyLoss
from privacy.errors import PipelineError
from tests.unit.analytics.store.helpers import (
    Clock,
    make_contract,
    make_obj,
    make_release_set,
    make_run,
    publish_file,
)

LOSS = PrivacyLoss(1.0, 1e-7)


def _masked(store: AggregateStore, name: str, etag: str, *, rows: int = 100) -> None:
    """A file validated and masked without a release of its own (per_file: false)."""
    obj = make_obj(name=name, etag=etag)
    run = make_run(f"run-{name}-{etag}", obj, status="masked")
    run.rows_in = rows
    run.finished_at = store._clock()
    assert store.record_masked(run)


def _release_over(store: AggregateStore, run_id: str, *, bump: float = 0.0) -> Coverage:
    files = store.dataset_files("employees")
    coverage = Coverage("employees", "append", tuple(f.obj for f in files), 24)
    res = store.reserve(make_contract(cap=10), LOSS, obj=coverage.obj, run_id=run_id)
    run = make_run(run_id, coverage.obj)
    assert store.publish(res, make_release_set(loss=LOSS, bump=bump), run, coverage)
    return coverage


def test_a_dataset_is_the_newest_version_of_each_file_validated(store_url: str) -> None:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    publish_file(store, make_contract(cap=10), "a.csv", LOSS, finished_at=clock.now)
    clock.advance(minutes=1)
    _masked(store, "b.csv", "b-1")
    clock.advance(minutes=1)
    _masked(store, "b.csv", "b-2")  # dropped again under the same name: replaces b-1
    rejected = make_run("run-bad", make_obj(name="bad.csv", etag="bad"), status="rejected")
    store.record_run(rejected)
    files = store.dataset_files("employees")
    assert [(f.obj.key.rsplit("/", 1)[-1], f.obj.etag) for f in files] == [
        ("a.csv", "etag-a.csv"), ("b.csv", "b-2")]
    # a masked-only version is done: a second run of it is a duplicate, not a second file
    again = make_run("run-again", make_obj(name="b.csv", etag="b-2"), status="masked")
    assert not store.record_masked(again)
    assert store.find_published(make_obj(name="b.csv", etag="b-2")) == "run-b.csv-b-2"
    store.close()


def test_a_release_over_the_same_files_is_a_duplicate_that_spends_nothing(store_url: str) -> None:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    _masked(store, "a.csv", "a-1")
    _masked(store, "b.csv", "b-1")
    assert store.files_since_dataset_release("employees") == 2
    first = _release_over(store, "run-ds-1")
    assert store.files_since_dataset_release("employees") == 0
    assert store.find_published(first.obj) == "run-ds-1"
    # the same files again: the reservation is cancelled, nothing is spent
    res = store.reserve(make_contract(cap=10), LOSS, obj=first.obj, run_id="run-ds-2")
    assert not store.publish(res, make_release_set(loss=LOSS), make_run("run-ds-2", first.obj),
                             first)
    clock.advance(minutes=1)
    _masked(store, "c.csv", "c-1")
    assert store.files_since_dataset_release("employees") == 1
    second = _release_over(store, "run-ds-3", bump=5.0)
    assert second.obj != first.obj and len(second.files) == 3
    reader = ReadOnlyStore(store_url)
    assert reader.budget("employees").epsilon_spent == pytest.approx(2 * LOSS.epsilon)
    sets = reader.release_sets("employees")
    assert [(s.kind, s.files, s.max_rows_per_unit) for s in sets] == [
        ("dataset", 3, 24), ("dataset", 2, 24)]
    assert sets[0].label.startswith("dataset release (3 files), ")
    assert reader.default_release_set("employees") == sets[0].ledger_id
    store.close()
    reader.close()


def test_readers_pick_a_release_set_and_read_its_history(store_url: str) -> None:
    clock = Clock()
    store = AggregateStore(store_url, clock=clock)
    publish_file(store, make_contract(cap=10), "a.csv", LOSS, bump=0.0, finished_at=clock.now)
    clock.advance(minutes=1)
    reader = ReadOnlyStore(store_url)
    assert reader.default_release_set("employees") is None  # no dataset release yet
    ds = _release_over(store, "run-ds-1", bump=50.0)
    clock.advance(minutes=1)
    publish_file(store, make_contract(cap=10), "b.csv", LOSS, bump=10.0, finished_at=clock.now)
    sets = reader.release_sets("employees")
    assert [s.kind for s in sets] == ["file", "dataset", "file"]
    assert sets[0].label.startswith("file b.csv, ")
    chosen = reader.default_release_set("employees")
    assert chosen == sets[1].ledger_id and len(ds.files) == 1
    counts = {v.ledger_id: v.value for v in reader.latest_values("employees", chosen)
              if v.metric == "count"}
    assert counts == {chosen: 150.0}
    # without a set: each analysis's latest release, as before (the file b.csv here)
    assert {v.value for v in reader.latest_values("employees") if v.metric == "count"} == {110.0}
    history = reader.values_of("employees", [s.ledger_id for s in sets], analysis="summary")
    by_set = {v.ledger_id: v.value for v in history if v.metric == "count"}
    assert by_set == {sets[0].ledger_id: 110.0, sets[1].ledger_id: 150.0,
                      sets[2].ledger_id: 100.0}
    assert all(v.analysis == "summary" for v in history)
    store.close()
    reader.close()


def test_coverage_must_name_the_reserved_release(store_url: str) -> None:
    store = AggregateStore(store_url)
    _masked(store, "a.csv", "a-1")
    files = tuple(f.obj for f in store.dataset_files("employees"))
    coverage = Coverage("employees", "append", files, 24)
    other = Coverage("employees", "append", files, 48)  # another bound: another release
    assert other.obj != coverage.obj
    res = store.reserve(make_contract(cap=10), LOSS, obj=coverage.obj, run_id="run-ds")
    with pytest.raises(PipelineError, match="coverage names another release"):
        store.publish(res, make_release_set(loss=LOSS), make_run("run-ds", coverage.obj), other)
    assert ReadOnlyStore(store_url).budget("employees").epsilon_spent == 0.0
    store.close()


def test_rows_processed_count_each_file_once(store_url: str) -> None:
    store = AggregateStore(store_url)
    _masked(store, "a.csv", "a-1", rows=100)
    _masked(store, "b.csv", "b-1", rows=50)
    _release_over(store, "run-ds-1")  # its run reads 2 x 100 rows again (make_run)
    [ds] = ReadOnlyStore(store_url).datasets()
    assert ds.rows_processed == 150 and ds.runs == 3
    store.close()


def test_a_windowed_release_is_another_release_and_says_since_when(store_url: str) -> None:
    from datetime import date

    store = AggregateStore(store_url)
    _masked(store, "a.csv", "a-1")
    files = tuple(f.obj for f in store.dataset_files("employees"))
    every = Coverage("employees", "append", files, 24)
    recent = Coverage("employees", "append", files, 24, date(2025, 12, 1))
    assert recent.obj != every.obj  # the same files, other rows: another release
    res = store.reserve(make_contract(cap=10), LOSS, obj=recent.obj, run_id="run-w")
    assert store.publish(res, make_release_set(loss=LOSS), make_run("run-w", recent.obj), recent)
    [s] = ReadOnlyStore(store_url).release_sets("employees")
    assert s.since == date(2025, 12, 1)
    assert s.label.startswith("dataset release (1 file, rows since 2025-12-01), ")
    store.close()
