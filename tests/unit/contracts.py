"""Contracts for the unit tests, built from the parts a test cares about."""

from __future__ import annotations

from typing import Any

from privacy.contract import Contract


def contract_of(
    dataset: str,
    columns: dict[str, Any],
    analyses: list[dict[str, Any]],
    *,
    budget: dict[str, float],
    unit: str | None = None,
    max_rows_per_unit: int | None = None,
    max_rows_per_file: int | None = None,
) -> Contract:
    """The contract of ``dataset``: its rows are people, or (``unit``) a person has up to
    ``max_rows_per_unit`` rows and ``unit`` is the person's pseudonymized identifier, declared
    before ``columns``. The row limits are the contract's defaults unless given."""
    who: dict[str, Any] = {"rows_are_people": True} if unit is None else {"privacy_unit": unit}
    if unit is not None:
        columns = {unit: {"role": "identifier", "action": "pseudonymize"}, **columns}
    if max_rows_per_unit is not None:
        who["max_rows_per_unit"] = max_rows_per_unit
    if max_rows_per_file is not None:
        who["max_rows_per_file"] = max_rows_per_file
    return Contract.model_validate(
        {"dataset": dataset, **who, "budget": budget, "columns": columns, "analyses": analyses}
    )


def monthly_days(start: str, end: str) -> dict[str, Any]:
    """A date column counted by month over the public period range ``start`` to ``end``."""
    return {"role": "time", "type": "date", "granularity": "month",
            "periods": {"start": start, "end": end}}
