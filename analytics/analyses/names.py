"""The names the analyses give their intermediate columns, aggregates and queries.

Analyses share prepared columns and aggregates by name (two analyses asking for the sum of
one measure get one noisy sum): every name is built here, so the producer of a column and
its readers cannot drift apart.

    >>> Name.centred("salary"), Name.indicator("salary", "above"), Name.sxy("a", "b")
    ('i:salary', 'above:salary', 'sxy:a*b')

Most names are a prefix and what they are of, ``<prefix>:<column>`` (or ``<prefix>:<x>*<y>``
for a pair of columns); the tables below give each kind its prefix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Indicator = Literal["present", "below", "above"]


def _edges(edges: Sequence[float]) -> str:
    return ",".join(f"{e:g}" for e in edges)


@dataclass(frozen=True)
class _Of:
    """The name ``<prefix>:<column>`` of one column.

    >>> _Of("x")("salary")
    'x:salary'
    """

    prefix: str

    def __call__(self, m: str) -> str:
        return f"{self.prefix}:{m}"


@dataclass(frozen=True)
class _OfPair:
    """The name ``<prefix>:<x>*<y>`` of a pair of columns.

    >>> _OfPair("xy")("a", "b")
    'xy:a*b'
    """

    prefix: str

    def __call__(self, x: str, y: str) -> str:
        return f"{self.prefix}:{x}*{y}"


class Name:
    """Prepared columns (row-wise expressions of the release input) and aggregates."""

    #: the measure clamped to its bounds minus their midpoint (float, null if missing)
    measure = _Of("x")
    #: the centred measure in fixed-point integers (0 where missing)
    centred = _Of("i")
    dimension = _Of("d")
    period = _Of("p")
    square = _Of("sq")
    product = _OfPair("xy")
    #: the aggregate: the noisy sum of the centred measure
    csum = _Of("csum")
    ss = _Of("ss")
    sxy = _OfPair("sxy")

    @staticmethod
    def indicator(m: str, what: Indicator) -> str:
        """A 0/1 column (and the sum aggregate of it): present, below or above the bounds."""
        return f"{what}:{m}"

    @staticmethod
    def bins(m: str, edges: Sequence[float]) -> str:
        return f"b:{m}:{_edges(edges)}"

    @staticmethod
    def quantile(m: str, q: float) -> str:
        return f"q:{m}:{q}"


class QueryId:
    """The merged queries: one OpenDP measurement each."""

    ALL = "all"  # ungrouped
    UNITS = "units"  # one row per person

    by = _Of("by")
    period = _Of("period")
    #: ungrouped over the rows where the measure is present
    present = _Of("present")

    @staticmethod
    def histogram(m: str, edges: Sequence[float]) -> str:
        return f"histogram:{m}:{_edges(edges)}"

    @staticmethod
    def complete(measures: Sequence[str]) -> str:
        """Ungrouped over the rows where every one of ``measures`` is present."""
        return f"complete:{','.join(measures)}"
