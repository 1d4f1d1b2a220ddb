"""The `sweep-landing` flow: the safety net behind every event source.

Lists `landing/` and emits an event for each object version not yet published: files
dropped while the watcher or receiver was down, or into an S3 server that sends no
notifications. Duplicates are harmless: a run for a published object version is skipped.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.utilities.asyncutils import run_coro_as_sync

from analytics.records import ObjectVersion
from analytics.store import AggregateStore
from flows.events import emit_objects
from flows.keys import parse_landing_key
from flows.objectstore import ObjectInfo, open_store
from flows.settings import Settings
from privacy.errors import InvalidKey

FLOW_NAME = "sweep-landing"


def unprocessed(settings: Settings) -> tuple[list[ObjectInfo], int]:
    """Objects in landing/ whose version is not published yet, and the count of bad keys."""
    store = open_store(settings)
    agg = AggregateStore(settings.aggregate_store_url)
    todo: list[ObjectInfo] = []
    bad = 0
    for info in store.list("landing/"):
        try:
            parse_landing_key(info.key)
        except InvalidKey:
            bad += 1
            continue
        if agg.find_published(ObjectVersion(info.bucket, info.key, info.etag, info.size)) is None:
            todo.append(info)
    return todo, bad


@flow(
    name=FLOW_NAME,
    description="Emit events for unprocessed objects in landing/.",
    persist_result=False,
)
def sweep_landing() -> int:
    log = get_run_logger()
    settings = Settings()
    todo, bad = unprocessed(settings)
    if bad:
        log.warning("%d object(s) in landing/ have keys that are not landing/<dataset>/<file>", bad)
    sent = run_coro_as_sync(emit_objects(todo, settings.event_namespace, "sweep")) if todo else 0
    log.info("sweep: %d unprocessed object(s) in landing/, %d event(s) emitted", len(todo), sent)
    return sent
