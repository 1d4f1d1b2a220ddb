"""The privacy layer: contracts, drafts, validation, masking and keys, k-anonymity, the DP
engine on OpenDP, intervals and budget arithmetic.

Import from the sub-packages (``privacy.contract``, ``privacy.validation``,
``privacy.release``, ...); the names below are also here, imported lazily (PEP 562), so
``import privacy.errors`` stays cheap.

>>> import privacy
>>> privacy.mask_summary(privacy.parse_contract("{dataset: d, rows_are_people: true, "
...     "budget: {epsilon_cap: 1}, columns: {email: {role: identifier}}}")).dropped
['email']
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # contracts
    "Contract": "privacy.contract",
    "parse_contract": "privacy.contract",
    "load_contract": "privacy.contract",
    "find_contract": "privacy.contract",
    "contract_json_schema": "privacy.contract",
    # inference, validation, masking, reports
    "infer_contract": "privacy.inference",
    "conform": "privacy.validation",
    "validate": "privacy.validation",
    "check": "privacy.validation",
    "ValidationReport": "privacy.validation",
    "mask": "privacy.masking",
    "mask_counts": "privacy.masking",
    "mask_summary": "privacy.masking",
    "kept_classes": "privacy.masking",
    "MaskSummary": "privacy.reports",
    "PrivacyReport": "privacy.reports",
    "achieved_k": "privacy.reports",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'privacy' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
