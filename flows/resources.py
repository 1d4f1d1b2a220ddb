"""What one flow run opens once and hands to its tasks: the object store and the aggregate
store. Each opens on first use, so the task that first needs it retries the opening too;
the aggregate store (migrated when opened) is closed when the run ends."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from analytics.store import AggregateStore
from flows.objectstore import ObjectStore, open_store
from flows.settings import Settings


class RunResources:
    """``with RunResources(settings) as res: ... res.objects ... res.aggregates ...``"""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def objects(self) -> ObjectStore:
        return open_store(self.settings)

    @cached_property
    def aggregates(self) -> AggregateStore:
        return AggregateStore(
            self.settings.aggregate_store_url,
            reservation_timeout=timedelta(seconds=self.settings.reservation_timeout_seconds),
        )

    def close(self) -> None:
        if "aggregates" in self.__dict__:  # opened
            self.aggregates.close()

    def __enter__(self) -> RunResources:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
