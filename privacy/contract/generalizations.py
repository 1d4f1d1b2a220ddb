"""Generalizations a contract may ask masking to apply: bands, date truncation, prefixes,
top-coding (``privacy.masking.generalize_expr`` applies them).

>>> BandGeneralization(width=10)
BandGeneralization(kind='band', width=10.0, origin=0.0)
>>> PrefixGeneralization(length=3).kind
'prefix'
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from privacy.contract.enums import _Strict


class BandGeneralization(_Strict):
    """Replace a number by the lower edge of its band: age 37 with width 10 -> 30."""

    kind: Literal["band"] = "band"
    width: float = Field(gt=0)
    origin: float = 0.0


class DateGeneralization(_Strict):
    """Truncate a date to the start of its month or year."""

    kind: Literal["date"] = "date"
    to: Literal["month", "quarter", "year"] = "month"


class PrefixGeneralization(_Strict):
    """Keep the first characters of a code (postcode 19104 -> 191)."""

    kind: Literal["prefix"] = "prefix"
    length: int = Field(ge=0, le=32)


class TopCodeGeneralization(_Strict):
    """Clamp a number into [bottom, top] (top-coding of rare extremes)."""

    kind: Literal["top_code"] = "top_code"
    top: float | None = None
    bottom: float | None = None


Generalization = Annotated[
    BandGeneralization | DateGeneralization | PrefixGeneralization | TopCodeGeneralization,
    Field(discriminator="kind"),
]
