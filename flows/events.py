"""The one Prefect event every source emits: ``<ns>.object.created``.

Resource: ``prefect.resource.id = <ns>.object.<bucket>/<key>`` with ``bucket`` and ``key``
labels; payload: ``etag``, ``size`` and the source (watcher, webhook, sweep). The
`process-object` deployment's trigger turns each event into one flow run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prefect.events import Event
from prefect.events.clients import get_events_client

from flows.objectstore import ObjectInfo

log = logging.getLogger(__name__)


def object_event(info: ObjectInfo, namespace: str, source: str) -> Event:
    return Event(
        event=f"{namespace}.object.created",
        resource={
            "prefect.resource.id": f"{namespace}.object.{info.bucket}/{info.key}",
            "prefect.resource.name": info.key,
            "bucket": info.bucket,
            "key": info.key,
        },
        payload={"etag": info.etag, "size": info.size, "source": source},
    )


async def emit_objects(infos: Iterable[ObjectInfo], namespace: str, source: str) -> int:
    """Hand events to the Prefect server and return once they are sent (not fire-and-forget)."""
    n = 0
    async with get_events_client(checkpoint_every=1) as client:
        for info in infos:
            await client.emit(object_event(info, namespace, source))
            n += 1
    if n:
        log.info("emitted %d %s.object.created event(s) from %s", n, namespace, source)
    return n
