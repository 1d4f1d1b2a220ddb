"""The analysis kinds: each is one module with ``plan(builder, analysis)``, registered here.

``plan`` adds the aggregates the analysis asks OpenDP for (``Builder.use`` on a query, shared
with other analyses where they match) and one ``Planned`` release whose ``finish`` turns the
released results into published values and sentences. Adding a kind is one new module and
one call to :func:`register`; a kind that the contract model does not know yet passes its
settings model too (see ``privacy.contract.register_analysis``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from privacy.contract import register_analysis
from privacy.errors import ContractError

Planner = Callable[[Any, Any], None]
_KINDS: dict[str, Planner] = {}


def register(kind: str, plan: Planner, settings: type[BaseModel] | None = None) -> None:
    """Make analysis ``kind`` plannable; ``settings`` is its contract model (``kind`` plus
    its own fields) when the contract does not declare the kind itself."""
    if settings is not None:
        register_analysis(kind, settings)
    _KINDS[kind] = plan


def planner(kind: str) -> Planner:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ContractError(f"analysis kind '{kind}' is not known to the release engine") from None


def kinds() -> list[str]:
    return sorted(_KINDS)
