"""Folder watcher for the embedded default: a file copied into the local landing folder
becomes a ``<ns>.object.created`` event.

Polls (portable, works on any filesystem) and waits until a file's size and modification
time stop changing before announcing it, so a half-copied file is never processed. Hidden
files (``.name``) are ignored: write to a hidden name and rename for an atomic drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from flows.events import emit_objects
from flows.keys import parse_landing_key
from flows.objectstore import LocalStore, ObjectInfo
from flows.settings import Settings
from privacy.errors import InvalidKey

log = logging.getLogger("privacy_analytics.watcher")


class LandingWatcher:
    def __init__(self, store: LocalStore, namespace: str, interval: float = 0.5) -> None:
        self.store = store
        self.namespace = namespace
        self.interval = interval
        self._pending: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) last seen
        self._announced: dict[str, tuple[int, int]] = {}
        self._refused: set[str] = set()

    def _scan(self) -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        landing = self.store.root / "landing"
        for dirpath, dirnames, filenames in os.walk(landing):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                found[p.relative_to(self.store.root).as_posix()] = (st.st_size, st.st_mtime_ns)
        return found

    def poll(self) -> list[ObjectInfo]:
        """One scan; returns the objects that became ready since the last scan."""
        ready: list[ObjectInfo] = []
        current = self._scan()
        for key, sig in current.items():
            if self._announced.get(key) == sig:
                continue
            if self._pending.get(key) != sig:
                self._pending[key] = sig  # new or still changing: look again next time
                continue
            self._pending.pop(key, None)
            try:
                parse_landing_key(key)
            except InvalidKey as exc:
                if key not in self._refused:
                    log.warning("ignoring %s", exc)
                    self._refused.add(key)
                continue
            info = self.store.stat(key)
            if info is not None and info.size > 0:
                ready.append(info)
                self._announced[key] = sig
        for seen in (self._announced, self._pending):  # forget deleted files
            for key in [k for k in seen if k not in current]:
                del seen[key]
        return ready

    async def run(self, stop: asyncio.Event) -> None:
        log.info("watching %s every %.1fs", self.store.root / "landing", self.interval)
        while not stop.is_set():
            ready = self.poll()
            if ready:
                try:
                    await emit_objects(ready, self.namespace, "watcher")
                except Exception:
                    log.exception("could not reach the Prefect server; will retry")
                    for info in ready:
                        self._announced.pop(info.key, None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


def main() -> None:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s watcher %(levelname)s %(message)s"
    )
    store = LocalStore(settings.objects_dir, bucket=settings.s3_bucket)
    watcher = LandingWatcher(store, settings.event_namespace, settings.watch_interval_seconds)

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await watcher.run(stop)

    asyncio.run(_run())


if __name__ == "__main__":
    main()
