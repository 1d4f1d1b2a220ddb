"""Contracts from YAML: parse, load and find ``<contracts dir>/<dataset>.yaml``; a broken
contract raises ContractError naming the file and the field.

>>> contract = parse_contract('''
... dataset: employees
... rows_are_people: true
... budget: {epsilon_cap: 10}
... columns:
...   hours: {role: measure, type: float, bounds: [0, 60]}
... ''')
>>> contract.dataset, contract.columns["hours"].fixed_bounds
('employees', (0.0, 60.0))
>>> parse_contract("{dataset: e, rows_are_people: true, budget: {epsilon_cap: 0}, "
...                "columns: {x: {role: dimension}}}")
Traceback (most recent call last):
privacy.errors.ContractError: <contract>: budget.epsilon_cap: Input should be greater than 0
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from privacy.contract.model import Contract
from privacy.errors import ContractError
from privacy.strict_yaml import unique_key_loader


def _format_errors(source: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


#: a YAML loader that refuses duplicate keys instead of silently keeping the last
_UniqueKeyLoader = unique_key_loader("duplicate key '{key}'")


def parse_contract(text: str, source: str = "<contract>") -> Contract:
    """Parse contract YAML; a broken contract raises ContractError naming file and field."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ContractError(f"{source}:{where} {problem}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a contract is a YAML mapping with dataset, budget, columns")
    try:
        return Contract.model_validate(data)
    except ValidationError as err:
        raise ContractError(_format_errors(source, err)) from None


def load_contract(path: Path, dataset: str | None = None) -> Contract:
    """Load and check ``path``; if ``dataset`` is given the contract must be for it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{path}: no such contract file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read contract ({type(exc).__name__})") from None
    contract = parse_contract(text, str(path))
    if dataset is not None and contract.dataset != dataset:
        raise ContractError(
            f"{path}: contract is for dataset '{contract.dataset}', not '{dataset}'"
        )
    return contract


def find_contract(contracts_dir: Path, dataset: str) -> Contract:
    """The contract for ``dataset`` in ``contracts_dir``, with a how-to when it is missing."""
    for suffix in (".yaml", ".yml"):
        path = contracts_dir / f"{dataset}{suffix}"
        if path.is_file():
            return load_contract(path, dataset)
    raise ContractError(
        f"no contract for dataset '{dataset}' in {contracts_dir}: draft one with "
        f"'privacy-analytics contract infer FILE --dataset {dataset} > "
        f"{contracts_dir}/{dataset}.yaml', review it, then drop the file again"
    )


def contract_json_schema() -> dict[str, Any]:
    """JSON Schema of the contract, for editors (published as contracts/contract.schema.json)."""
    return Contract.model_json_schema()
