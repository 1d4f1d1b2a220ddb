"""Calendar periods of time columns: their integer index and a contract's public range.

>>> from datetime import date
>>> period_index(date(2025, 1, 15), Granularity.MONTH) - period_index(date(2024, 12, 1), None)
1
>>> PeriodRange(start=2000, end=2024).end
2024
"""

from __future__ import annotations

from datetime import date

from pydantic import model_validator

from privacy.contract.enums import Granularity, _Strict

#: at most this many calendar periods in a time column's public ``periods`` range
MAX_PERIODS = 400


def period_index(value: date | int, granularity: Granularity | None) -> int:
    """The calendar period of ``value`` as an integer; consecutive periods differ by 1.

    day: date ordinal; week: Monday-based weeks; month: year*12 + month-1; quarter:
    year*4 + quarter-1; year: the year. Integer time values are their own period.
    """
    if isinstance(value, int):
        return value
    gran = granularity or Granularity.MONTH
    if gran is Granularity.DAY:
        return value.toordinal()
    if gran is Granularity.WEEK:
        return (value.toordinal() - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
    if gran is Granularity.MONTH:
        return value.year * 12 + value.month - 1
    if gran is Granularity.QUARTER:
        return value.year * 4 + (value.month - 1) // 3
    return value.year


class PeriodRange(_Strict):
    """The public span of a time column, both ends included: its calendar periods (at the
    column's granularity) are public group keys for trends; rows outside are not released.

    ``periods: {start: 2025-01-01, end: 2026-12-31}`` (integer time: ``{start: 2000, end:
    2024}``)."""

    start: date | int
    end: date | int

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRange:
        if isinstance(self.start, int) != isinstance(self.end, int):
            raise ValueError("periods.start and periods.end must both be dates or both integers")
        if not self.start < self.end:  # type: ignore[operator]
            raise ValueError("periods.start must be before periods.end")
        return self


def period_count(periods: PeriodRange, granularity: Granularity | None) -> int:
    """How many calendar periods ``periods`` spans, both ends included.

    >>> period_count(PeriodRange(start=date(2025, 1, 1), end=date(2025, 12, 31)), None)
    12
    """
    return period_index(periods.end, granularity) - period_index(periods.start, granularity) + 1
