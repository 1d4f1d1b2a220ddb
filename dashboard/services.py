"""What the pages use at request time: settings, the read-only store, the uploader and the
users (None: no users file, the loopback user is the operator).

One :class:`Services` per app, kept on its Flask server, so several apps (one per test)
can live in one process. The store is opened lazily and reopened after a failure, so a
dashboard started before the pipeline has created its database recovers on its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import flask

from analytics.store.queries import ReadOnlyStore
from dashboard.settings import DashboardSettings
from dashboard.uploader import Uploader, make_uploader
from dashboard.users import UserDirectory, load_users

EXTENSION = "privacy_analytics_dashboard"


@dataclass
class Services:
    settings: DashboardSettings
    uploader: Uploader | None = None
    users: UserDirectory | None = None
    _store: ReadOnlyStore | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> Services:
        """Services for ``settings``; a broken users file raises UsersFileError here, at
        start-up, not at the first login."""
        return cls(settings=settings, uploader=make_uploader(settings),
                   users=load_users(settings))

    def store(self) -> ReadOnlyStore:
        """The read-only store; raises StorageUnavailable while it cannot be opened."""
        with self._lock:
            if self._store is None:
                self._store = ReadOnlyStore(self.settings.aggregate_store_url)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def current_services() -> Services:
    """The services of the app serving the current request."""
    services: Services = flask.current_app.extensions[EXTENSION]
    return services
