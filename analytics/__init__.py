"""Analytics: the catalogue of DP analyses, insight wording and the aggregate store.

The release entry points are imported lazily (PEP 562), so ``import analytics.store`` does
not load OpenDP.

    from analytics import release_analyses, plan_analyses
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "release_analyses": "analytics.catalogue",
    "plan_analyses": "analytics.catalogue",
    "ReleasePlan": "analytics.catalogue",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analytics' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
