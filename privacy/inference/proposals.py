"""Proposals for a draft contract: a role, a type and a reason per column (from its name and
sampled values), and the column most likely to name the person of each row.

>>> import polars as pl
>>> from privacy.inference.profiling import _profile
>>> prop = _propose(_profile("birth_date", pl.Series(["1990-04-01", "1985-12-24"])))
>>> prop.role, prop.type, prop.generalize
('quasi_identifier', 'date', '{kind: date, to: year}')
"""

from __future__ import annotations

from dataclasses import dataclass

from privacy.inference.lexicons import (
    _BIRTH_WORDS,
    _ID_WORDS,
    _IDENTIFIER_WORDS,
    _NOT_PERSON_WORDS,
    _NOT_TIME,
    _PERSON_NAME_WORDS,
    _PERSON_QUALIFIERS,
    _PERSON_WORDS,
    _POSTCODE_WORDS,
    _QI_WORDS,
    _TIME_WORDS,
)
from privacy.inference.profiling import _phrases, _Profile


@dataclass
class _Proposal:
    name: str
    role: str
    type: str
    why: str
    review: str | None = None
    action: str | None = None
    granularity: str | None = None
    generalize: str | None = None


def _most(share: float) -> str:
    return "nearly all" if share >= 0.95 else "most"


def _distinct(p: _Profile) -> str:
    return "almost every sampled value distinct" if p.ratio >= 0.95 else "many distinct values"


def _yaml_type(kind: str) -> str:
    return kind if kind in ("integer", "float", "boolean", "date", "datetime") else "string"


def _name_identifier(p: _Profile) -> str | None:
    phrases = _phrases(p.tokens)
    for word, what in _IDENTIFIER_WORDS.items():
        if word in phrases:
            return what
    if phrases & _PERSON_NAME_WORDS:
        others = [
            t for t in p.tokens if t not in _PERSON_NAME_WORDS and t not in _PERSON_QUALIFIERS
        ]
        if not others:
            return "a person's name"
    return None


def _propose(p: _Profile) -> _Proposal:
    """The role and type proposed for profiled column ``p``: by its name first, then by
    its values."""
    t = _yaml_type(p.kind)
    by_name = _by_name(p, t)
    return by_name if by_name is not None else _by_values(p, t)


def _by_name(p: _Profile, t: str) -> _Proposal | None:
    """Identifiers by name or content, birth dates, postcodes, ids, quasi-identifiers."""
    phrases = _phrases(p.tokens)
    named = _name_identifier(p)
    if named:
        return _Proposal(p.name, "identifier", "string", f"column name suggests {named}")
    if p.content:
        label, share = p.content[0]
        return _Proposal(
            p.name, "identifier", "string", f"{_most(share)} sampled values look like {label}"
        )
    if phrases & _BIRTH_WORDS:
        return _Proposal(
            p.name, "quasi_identifier", t if t in ("date", "datetime") else "string",
            "column name suggests a birth date",
            generalize="{kind: date, to: year}" if t in ("date", "datetime") else None,
            review="a birth date is close to identifying: keep only the year, or drop it",
        )  # fmt: skip
    if phrases & _POSTCODE_WORDS:
        return _Proposal(
            p.name, "quasi_identifier", "string", "column name suggests a postcode",
            generalize="{kind: prefix, length: 3}",
        )  # fmt: skip
    id_named = bool(set(p.tokens) & _ID_WORDS) and p.kind in ("string", "integer")
    if id_named and (p.ratio >= 0.2 or p.distinct > 100):
        return _Proposal(
            p.name, "identifier", "string", f"named like an id; {_distinct(p)}"
        )
    qi = next((what for word, what in _QI_WORDS.items() if word in phrases), None)
    if qi:
        gen = "{kind: band, width: 10}" if qi == "age" and t in ("integer", "float") else None
        return _Proposal(
            p.name, "quasi_identifier", t if t != "boolean" else "string",
            f"column name suggests {qi}", generalize=gen,
        )  # fmt: skip
    return None


def _by_values(p: _Profile, t: str) -> _Proposal:
    """Time, dimensions, measures, near-unique ids and text, by the kind of values."""
    if p.kind in ("date", "datetime"):
        return _Proposal(p.name, "time", t, "values are dates", granularity="month")
    time_named = bool(set(p.tokens) & _TIME_WORDS) and not set(p.tokens) & _NOT_TIME
    if time_named and p.kind == "integer":
        gran = (
            "year"
            if {"year", "yr", "jahr", "anno", "año", "annee", "année"} & set(p.tokens)
            else "day"
        )
        return _Proposal(
            p.name, "time", "integer", "integer column named like a period", granularity=gran
        )
    if p.kind == "integer" and p.n >= 20 and p.distinct == p.n:
        return _Proposal(
            p.name, "identifier", "string", "every sampled value is distinct (near-unique)",
            review="a unique number is often a record id; if it is a measure, say so",
        )  # fmt: skip
    if p.kind == "integer" and p.distinct <= 12:
        return _Proposal(p.name, "dimension", "integer", "few distinct values")
    if p.kind in ("integer", "float"):
        return _Proposal(
            p.name, "measure", t, "numeric",
            review="bounds: auto estimates the clamping range under DP at each release (10% "
            "of its ε); write bounds: [lower, upper] instead if the range is public",
        )  # fmt: skip
    if p.kind == "boolean":
        return _Proposal(p.name, "dimension", "boolean", "true/false values")
    if p.n >= 20 and p.ratio >= 0.95:
        return _Proposal(
            p.name, "identifier", "string", "near-unique: almost every sampled value is distinct"
        )
    if p.avg_len > 30 and p.avg_words >= 4:
        return _Proposal(
            p.name, "text", "string", "free text", review="free text is dropped by default"
        )
    if p.distinct <= 100 and (p.ratio <= 0.5 or p.n < 20):
        return _Proposal(
            p.name, "dimension", "string", "few distinct values",
            review="keys are private: list them under keys: only if they are public",
        )  # fmt: skip
    return _Proposal(
        p.name, "text", "string", "high-cardinality text (many distinct values)",
        review="dropped by default; make it a dimension or identifier if that is what it is",
    )  # fmt: skip


def _person_score(p: _Proposal, prof: _Profile) -> float:
    """How much a column looks like the person every row belongs to (0: not at all).

    Only identifier columns qualify. A name that says person (patient_id, seqn, employee)
    counts most, then an id-like name, then near-uniqueness; ids of records, tests or orders
    are passed over, and so are columns whose values are names, addresses or free text."""
    if p.role != "identifier" or prof.kind not in ("string", "integer") or prof.n == 0:
        return 0.0
    tokens = set(prof.tokens) | {"".join(prof.tokens)}
    if tokens & _NOT_PERSON_WORDS:
        return 0.0
    named = _name_identifier(prof)
    if named is not None and named not in ("an email address", "a user name"):
        return 0.0  # a person's name, phone or address: identifying, but not a key
    score = 0.0
    if tokens & _PERSON_WORDS or any(t.startswith(tuple(_PERSON_WORDS)) for t in tokens):
        score += 4
    if set(prof.tokens) & _ID_WORDS or prof.name.lower().endswith("id"):
        score += 2
    if named is not None:
        score += 1  # an email address or user name identifies one person
    if prof.ratio >= 0.2:
        score += 1
    return score


def _privacy_unit(props: list[_Proposal], profiles: dict[str, _Profile]) -> _Proposal | None:
    """The most person-like column that exists in the file, or None."""
    scored = [(_person_score(p, profiles[p.name]), i, p) for i, p in enumerate(props)]
    best = max((s for s in scored if s[0] > 0), default=None, key=lambda s: (s[0], -s[1]))
    return None if best is None else best[2]
