"""The flows tests start from no PA_* settings of the caller's shell."""

from __future__ import annotations

import os

import pytest


def drop_pa_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("PA_")]:
        monkeypatch.delenv(name)
