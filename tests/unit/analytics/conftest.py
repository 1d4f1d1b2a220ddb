from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty aggregate store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'aggregates.db'}"
    make: Callable[[], str] = request.getfixturevalue("pg_url")
    return make()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aggregates.db'}"
