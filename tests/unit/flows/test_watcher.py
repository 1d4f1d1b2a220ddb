"""The local landing-folder watcher (flows.watcher) on a real folder."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

import flows.watcher as watcher_mod
from flows.objectstore import LocalStore, ObjectInfo
from flows.watcher import LandingWatcher


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects", bucket="bk")


@pytest.fixture
def watcher(store: LocalStore) -> LandingWatcher:
    return LandingWatcher(store, "tns", interval=0.01)


def _drop(store: LocalStore, rel: str, data: bytes, mtime_ns: int | None = None) -> Path:
    p = store.root / "landing" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    if mtime_ns is not None:
        os.utime(p, ns=(mtime_ns, mtime_ns))
    return p


def keys(infos: list[ObjectInfo]) -> list[str]:
    return [i.key for i in infos]


def test_a_file_is_announced_once_it_is_stable(store: LocalStore, watcher: LandingWatcher) -> None:
    _drop(store, "ds/a.csv", b"a\n1\n")
    assert watcher.poll() == []  # seen for the first time: might still be copying
    ready = watcher.poll()
    assert ready == [ObjectInfo("bk", "landing/ds/a.csv", hashlib.md5(b"a\n1\n").hexdigest(), 4)]
    assert watcher.poll() == []  # announced once
    assert watcher.poll() == []


def test_a_growing_file_waits_until_it_stops_changing(
    store: LocalStore, watcher: LandingWatcher
) -> None:
    p = _drop(store, "ds/a.csv", b"a\n", mtime_ns=1_000)
    assert watcher.poll() == []
    p.write_bytes(b"a\n1\n")  # still being copied
    os.utime(p, ns=(2_000, 2_000))
    assert watcher.poll() == []
    p.write_bytes(b"a\n1\n2\n")
    os.utime(p, ns=(3_000, 3_000))
    assert watcher.poll() == []
    ready = watcher.poll()
    assert keys(ready) == ["landing/ds/a.csv"] and ready[0].size == 6


def test_same_size_new_mtime_is_a_change(store: LocalStore, watcher: LandingWatcher) -> None:
    p = _drop(store, "ds/a.csv", b"aaaa", mtime_ns=1_000)
    watcher.poll()
    p.write_bytes(b"bbbb")
    os.utime(p, ns=(2_000, 2_000))
    assert watcher.poll() == []


def test_hidden_files_and_folders_are_never_announced(
    store: LocalStore, watcher: LandingWatcher
) -> None:
    _drop(store, "ds/.a.csv.part", b"half")
    _drop(store, "ds/.DS_Store", b"junk")
    _drop(store, ".uploads/ds/a.csv", b"x")
    _drop(store, "ds/.tmp/a.csv", b"x")
    for _ in range(3):
        assert watcher.poll() == []
    # hidden-then-rename is the atomic drop
    (store.root / "landing/ds/.a.csv.part").rename(store.root / "landing/ds/a.csv")
    watcher.poll()
    assert keys(watcher.poll()) == ["landing/ds/a.csv"]


def test_empty_files_are_not_announced(store: LocalStore, watcher: LandingWatcher) -> None:
    _drop(store, "ds/a.csv", b"")
    for _ in range(3):
        assert watcher.poll() == []


def test_a_changed_file_is_announced_again(store: LocalStore, watcher: LandingWatcher) -> None:
    p = _drop(store, "ds/a.csv", b"v1\n", mtime_ns=1_000)
    watcher.poll()
    first = watcher.poll()
    p.write_bytes(b"v2 longer\n")
    os.utime(p, ns=(2_000, 2_000))
    assert watcher.poll() == []
    second = watcher.poll()
    assert keys(second) == ["landing/ds/a.csv"]
    assert second[0].etag != first[0].etag


def test_bad_keys_are_refused_once_with_a_warning(
    store: LocalStore, watcher: LandingWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    _drop(store, "top-level.csv", b"x")
    _drop(store, "ds/sub/deep.csv", b"x")
    _drop(store, "bad name/a.csv", b"x")
    _drop(store, "ds/ok.csv", b"x")
    with caplog.at_level(logging.WARNING, logger="privacy_analytics.watcher"):
        watcher.poll()
        ready = watcher.poll()
        for _ in range(3):
            assert watcher.poll() == []
    assert keys(ready) == ["landing/ds/ok.csv"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert any("landing/<dataset>/<file>" in w for w in warnings)
    assert any("dataset name 'bad name'" in w for w in warnings)


def test_deleted_files_are_forgotten(store: LocalStore, watcher: LandingWatcher) -> None:
    p = _drop(store, "ds/a.csv", b"a\n1\n", mtime_ns=5_000)
    watcher.poll()
    assert keys(watcher.poll()) == ["landing/ds/a.csv"]
    p.unlink()  # processed: the flow removed it
    assert watcher.poll() == []
    # the same bytes dropped again (same size and mtime) are a new drop: announced again,
    # after the usual stability check
    _drop(store, "ds/a.csv", b"a\n1\n", mtime_ns=5_000)
    assert watcher.poll() == []
    assert keys(watcher.poll()) == ["landing/ds/a.csv"]


def test_a_file_deleted_while_pending_is_forgotten(
    store: LocalStore, watcher: LandingWatcher
) -> None:
    p = _drop(store, "ds/a.csv", b"a\n1\n", mtime_ns=5_000)
    assert watcher.poll() == []  # pending
    p.unlink()
    assert watcher.poll() == []
    _drop(store, "ds/a.csv", b"a\n1\n", mtime_ns=5_000)
    assert watcher.poll() == []  # a new file: seen once, not yet stable
    assert keys(watcher.poll()) == ["landing/ds/a.csv"]


def test_run_emits_ready_files_and_retries_when_prefect_is_down(
    store: LocalStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[list[str], str, str]] = []
    failures = [True]  # the first hand-over fails

    async def fake_emit(infos: Iterable[ObjectInfo], namespace: str, source: str) -> int:
        items = list(infos)
        if failures and failures.pop():
            raise ConnectionError("server down")
        sent.append(([i.key for i in items], namespace, source))
        return len(items)

    monkeypatch.setattr(watcher_mod, "emit_objects", fake_emit)
    _drop(store, "ds/a.csv", b"x\n")
    w = LandingWatcher(store, "tns", interval=0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(w.run(stop))
        for _ in range(500):
            if sent:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert sent == [(["landing/ds/a.csv"], "tns", "watcher")]
