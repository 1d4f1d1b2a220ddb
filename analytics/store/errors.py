"""The aggregate store's own errors (families of :mod:`privacy.errors`)."""

from __future__ import annotations

from privacy.errors import PipelineError, StorageUnavailable


class UnknownDataset(PipelineError):
    """The aggregate store has nothing for this dataset name.

    >>> raise UnknownDataset("no dataset 'employes' in the aggregate store; known: employees")
    """

    kind = "unknown_dataset"


class StoreNotCreated(StorageUnavailable):
    """The SQLite aggregate store file does not exist yet: nothing has been published (a new
    install). Commands that list things answer with an empty list.

    >>> raise StoreNotCreated("aggregate store sqlite:////srv/pa/aggregates.db: no data has been "
    ...                       "published yet (the file does not exist)")
    """
