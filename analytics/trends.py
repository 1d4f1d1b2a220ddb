"""Calendar periods for trends and forecasts: public labels computed row by row.

A period depends only on the row's own time value and the contract's granularity, so
computing it before the DP query is a stable, row-wise transform. It is computed as an
integer *ordinal* (consecutive periods differ by 1; the same numbering as
``privacy.contract.period_index``), which is cheap to group by and to regress on:

    day: date ordinal; week: Monday-based week number; month: year*12 + month-1;
    quarter: year*4 + quarter-1; year: the year; integer time columns: the integer itself.

Which periods appear in a file is private. When the contract declares a time column's
public ``periods`` range, every period of the range is a public group key
(:func:`public_periods`): each is released, and rows outside the range are not. Without
a range, trends release periods only through OpenDP's threshold (δ > 0).

Labels for people: day "2024-03-05", week "2024-03-04" (its Monday), month "2024-03",
quarter "2024-Q1", year "2024".

>>> march = period_ordinal("2024-03", Granularity.MONTH)
>>> march - period_ordinal("2023-12", Granularity.MONTH), period_label(march, Granularity.MONTH)
(3, '2024-03')
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import NamedTuple

import polars as pl

from privacy.contract import Column, ColumnType, Granularity, period_index

#: days from 0001-01-01 (ordinal 1) to 1970-01-01 (polars' day 0)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def period_ordinal_expr(name: str, column: Column, dtype: pl.DataType) -> pl.Expr:
    """The period ordinal (Int64) of time column ``name``; null where the time is null."""
    gran = column.granularity or Granularity.MONTH
    col = pl.col(name)
    if is_integer_time(column, dtype):
        if dtype == pl.String:
            return col.str.strip_chars().cast(pl.Int64, strict=False)
        return col.cast(pl.Int64, strict=False)
    if dtype == pl.String:
        col = col.str.to_datetime(column.format, strict=False)
    day = col.cast(pl.Date).cast(pl.Int64) + _EPOCH_ORDINAL
    if gran is Granularity.DAY:
        return day
    if gran is Granularity.WEEK:
        return (day - 1) // 7
    year = col.dt.year().cast(pl.Int64)
    if gran is Granularity.MONTH:
        return year * 12 + col.dt.month().cast(pl.Int64) - 1
    if gran is Granularity.QUARTER:
        return year * 4 + col.dt.quarter().cast(pl.Int64) - 1
    return year


def public_periods(column: Column) -> list[int] | None:
    """The ordinals of the contract's public period range (None: periods are private)."""
    if column.periods is None:
        return None
    first = period_index(column.periods.start, column.granularity)
    last = period_index(column.periods.end, column.granularity)
    return list(range(first, last + 1))


def partial_periods(column: Column) -> set[int]:
    """Ordinals of the public range's periods that the range covers only in part: the first
    when ``periods.start`` is not the first day of its period, the last when ``periods.end``
    is not its period's last day. Their counts cover fewer days than the others, so trend
    sentences and forecasts leave them out (their values are still published)."""
    rng = column.periods
    if rng is None or isinstance(rng.start, int) or isinstance(rng.end, int):
        return set()
    gran = column.granularity
    out = set()
    start, end = rng.start, rng.end
    if period_index(date.fromordinal(start.toordinal() - 1), gran) == period_index(start, gran):
        out.add(period_index(start, gran))
    if period_index(date.fromordinal(end.toordinal() + 1), gran) == period_index(end, gran):
        out.add(period_index(end, gran))
    return out


def is_integer_time(column: Column, dtype: pl.DataType) -> bool:
    return dtype.is_integer() or (column.type is ColumnType.INTEGER and not dtype.is_temporal())


class _Calendar(NamedTuple):
    """How one kind of period is called, numbered and labelled."""

    noun: str
    ordinal: Callable[[str], int]
    label: Callable[[int], str]


def _parts_of_year(noun: str, per_year: int, sep: str, digits: int) -> _Calendar:
    """Months ("2024-03": ``year*12 + month-1``) and quarters ("2024-Q1": ``year*4 +
    quarter-1``): the year, ``sep`` and the 1-based part, ``digits`` wide."""

    def ordinal(label: str) -> int:
        year, part = label.split(sep)
        return int(year) * per_year + int(part) - 1

    def label(ordinal: int) -> str:
        year, part0 = divmod(ordinal, per_year)
        return f"{year:04d}{sep}{part0 + 1:0{digits}d}"

    return _Calendar(noun, ordinal, label)


_CALENDARS = {
    Granularity.DAY: _Calendar(
        "day", lambda s: date.fromisoformat(s).toordinal(), lambda o: date.fromordinal(o).isoformat()
    ),
    Granularity.WEEK: _Calendar(
        "week",
        lambda s: (date.fromisoformat(s).toordinal() - 1) // 7,  # ordinal 1 is a Monday
        lambda o: date.fromordinal(o * 7 + 1).isoformat(),
    ),
    Granularity.MONTH: _parts_of_year("month", 12, "-", 2),
    Granularity.QUARTER: _parts_of_year("quarter", 4, "-Q", 1),
    Granularity.YEAR: _Calendar("year", int, str),
}
#: integer time columns: the integer itself
_INTEGER = _Calendar("period", int, str)


def _calendar(granularity: Granularity | None, integer: bool) -> _Calendar:
    return _INTEGER if integer else _CALENDARS[granularity or Granularity.MONTH]


def period_ordinal(label: str, granularity: Granularity | None, integer: bool = False) -> int:
    """Consecutive periods have consecutive ordinals."""
    return _calendar(granularity, integer).ordinal(label)


def period_label(ordinal: int, granularity: Granularity | None, integer: bool = False) -> str:
    """The inverse of :func:`period_ordinal`."""
    return _calendar(granularity, integer).label(ordinal)


def period_noun(granularity: Granularity | None, integer: bool = False) -> str:
    return _calendar(granularity, integer).noun
