"""Draft contract YAML for a file, with ``# REVIEW`` comments, for a human to review.

Nothing read from a row is written into the draft: no values, no keys, no number derived
from the data; comments say "few" or "many" distinct values, never a count. The draft is
a valid contract as emitted.

>>> import polars as pl
>>> from privacy.contract import parse_contract
>>> lf = pl.LazyFrame({"patient_id": ["p1", "p2", "p1"], "age": [34, 51, 34]})
>>> draft = infer_contract(lf, "visits")
>>> parse_contract(draft).privacy_unit, parse_contract(draft).columns["age"].role.value
('patient_id', 'quasi_identifier')
"""

from __future__ import annotations

import json
import re

import polars as pl

from privacy.errors import ContractError
from privacy.inference.profiling import _Profile, _profile
from privacy.inference.proposals import _privacy_unit, _Proposal, _propose
from privacy.names import DATASET_RE as NAME_RE

_YAML_SPECIAL = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _key(name: str) -> str:
    if _PLAIN.match(name) and name.lower() not in _YAML_SPECIAL:
        return name
    return json.dumps(name, ensure_ascii=False)


def _unit_lines(unit: _Proposal | None, repeating: set[str]) -> list[str]:
    """Whose rows these are: the proposed privacy unit, or rows_are_people."""
    if unit is None:
        return [
            "rows_are_people: true  # REVIEW: no person column found; this says every row is a "
            "different person. If people can have several rows, name their column as "
            "privacy_unit with max_rows_per_unit instead"
        ]
    rows = 10 if unit.name in repeating else 1
    return [
        f"privacy_unit: {_key(unit.name)}  # REVIEW: the column naming the person of each row",
        f"max_rows_per_unit: {rows}  # REVIEW: the most rows one person may have in a file "
        "(a public choice: more are dropped at random, and noise grows with it)",
    ]


def _column_lines(p: _Proposal) -> list[str]:
    lines = [f"  {_key(p.name)}:  # {p.why}", f"    role: {p.role}", f"    type: {p.type}"]
    if p.action:
        lines.append(f"    action: {p.action}  # keyed HMAC-SHA256 pseudonym")
    elif p.role == "identifier":
        lines.append("    action: drop")
    if p.role == "measure":
        lines.append(f"    bounds: auto  # REVIEW: {p.review}")
    elif p.review:
        lines.append(f"    # REVIEW: {p.review}")
    if p.granularity:
        lines.append(f"    granularity: {p.granularity}")
    if p.generalize:
        lines.append(f"    generalize: {p.generalize}  # REVIEW")
    return lines


def _render(
    dataset: str,
    props: list[_Proposal],
    repeating: set[str],
    profiles: dict[str, _Profile],
) -> str:
    unit = _privacy_unit(props, profiles)
    if unit is not None:
        unit.action = "pseudonymize"
    qis = [p.name for p in props if p.role == "quasi_identifier"]
    lines = [
        "# yaml-language-server: $schema=./contract.schema.json",
        "# Draft contract inferred from a sample of the file. REVIEW EVERY LINE before use:",
        "# roles, types, bounds and the privacy unit are proposals, not facts about the data.",
        f"dataset: {dataset}",
        "version: 1",
        *_unit_lines(unit, repeating),
        "budget:",
        "  epsilon_cap: 10.0  # REVIEW: total privacy budget of this dataset",
        "  delta: 1.0e-6",
        "  epsilon_per_release: 1.0",
        "anonymity:",
        "  k: 5  # rows in quasi-identifier classes smaller than k are suppressed",
        "  quasi_identifiers: [" + ", ".join(_key(q) for q in qis) + "]  # REVIEW",
        "columns:",
    ]
    for p in props:
        lines += _column_lines(p)
    lines += ["analyses:", "  - kind: summary"]
    return "\n".join(lines) + "\n"


def infer_contract(lf: pl.LazyFrame, dataset: str, *, sample_rows: int = 10_000) -> str:
    """Draft contract YAML for ``lf`` (see docs/architecture.md, "Drafts"); reads
    ``sample_rows`` rows."""
    if not NAME_RE.match(dataset):
        raise ContractError(
            f"dataset name '{dataset}' may only use letters, digits, '-' and '_' (at most 64)"
        )
    sample = lf.head(sample_rows).collect(engine="streaming")
    if sample.width == 0:
        raise ContractError(f"dataset '{dataset}': the file has no columns to infer from")
    props: list[_Proposal] = []
    profiles: dict[str, _Profile] = {}
    repeating: set[str] = set()
    for name in sample.columns:
        prof = _profile(name, sample[name])
        prop = _propose(prof)
        if prop.role == "identifier" and 0 < prof.distinct < prof.n:
            repeating.add(name)
        props.append(prop)
        profiles[name] = prof
    return _render(dataset, props, repeating, profiles)
