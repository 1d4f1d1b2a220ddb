"""Profiles of a sampled column: name tokens, the value kind, distinctness, text length,
and the share of values that look like identifiers.

>>> import polars as pl
>>> p = _profile("customerEmail", pl.Series(["a@x.org", "b@y.org", " "]))
>>> p.tokens, p.kind, p.n, p.content
(['customer', 'email'], 'string', 2, [('an email address', 1.0)])
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import polars as pl

from privacy.inference.patterns import _CONTENT_CHECKS


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    spaced = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", spaced)
    return [t for t in re.split(r"[^0-9A-Za-zÀ-ÿąćęłńóśźżĄĆĘŁŃÓŚŹŻ]+", spaced.lower()) if t]


def _phrases(tokens: list[str]) -> set[str]:
    out = set(tokens)
    out |= {a + b for a, b in itertools.pairwise(tokens)}
    out |= {a + b + c for a, b, c in zip(tokens, tokens[1:], tokens[2:], strict=False)}
    out.add("".join(tokens))
    return out


@dataclass
class _Profile:
    name: str
    tokens: list[str]
    n: int = 0  # non-null sampled values
    distinct: int = 0
    kind: str = "string"  # string, integer, float, boolean, date, datetime
    avg_len: float = 0.0
    avg_words: float = 0.0
    content: list[tuple[str, float]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.distinct / self.n if self.n else 0.0


def _text_kind(s: pl.Series) -> str:
    if s.len() == 0:
        return "string"
    as_float = s.cast(pl.Float64, strict=False)
    if as_float.null_count() == 0 and as_float.is_finite().all():
        if s.cast(pl.Int64, strict=False).null_count() == 0:
            return "integer"
        return "float"
    low = s.str.to_lowercase()
    if low.is_in(["true", "false"]).all():
        return "boolean"
    if s.str.to_date("%Y-%m-%d", strict=False).null_count() == 0:
        return "date"
    if s.str.contains(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}").all():
        return "datetime"
    return "string"


def _kind_of(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "integer"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    if dtype == pl.Boolean:
        return "boolean"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    return "string"


def _profile(name: str, s: pl.Series) -> _Profile:
    p = _Profile(name=name, tokens=_tokens(name))
    if s.dtype == pl.String:
        s = s.str.strip_chars()
        s = s.filter(s.str.len_bytes() > 0)
        p.kind = _text_kind(s)
    else:
        s = s.drop_nulls()
        p.kind = _kind_of(s.dtype)
    p.n = s.len()
    if p.n == 0:
        return p
    p.distinct = s.n_unique()
    text = s.cast(pl.String)
    p.avg_len = float(text.str.len_chars().mean() or 0.0)  # type: ignore[arg-type]
    p.avg_words = float(text.str.count_matches(r"\S+").mean() or 0.0)  # type: ignore[arg-type]
    if p.kind in ("string", "integer"):
        values = (
            text.unique().head(2000).to_list() if p.kind == "integer" else text.head(2000).to_list()
        )
        for label, check, threshold in _CONTENT_CHECKS:
            if p.kind == "integer" and "card" not in label:
                continue
            share = sum(1 for v in values if v and check(v)) / len(values)
            if share >= threshold:
                p.content.append((label, share))
    return p
