"""Calendar periods for trends and forecasts: public labels computed row by row.

A period label depends only on the row's own time value and the contract's granularity, so
computing it before the DP query is a stable, row-wise transform. Which periods appear in a
file is private unless the contract declares them; trends therefore release periods through
OpenDP's threshold (δ > 0).

Labels sort chronologically and map to integer ordinals (consecutive periods differ by 1),
which forecasts regress on:

    day "2024-03-05", week "2024-03-04" (its Monday), month "2024-03", quarter "2024-Q1",
    year "2024"; integer time columns use the integer itself.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from privacy.contract import Column, ColumnType, Granularity


def period_expr(name: str, column: Column, dtype: pl.DataType) -> pl.Expr:
    """The period label (a string) of time column ``name``; null where the time is null."""
    gran = column.granularity or Granularity.MONTH
    col = pl.col(name)
    if dtype.is_integer() or (column.type is ColumnType.INTEGER and not dtype.is_temporal()):
        if dtype == pl.String:
            return col.str.strip_chars().cast(pl.Int64, strict=False).cast(pl.String)
        return col.cast(pl.Int64).cast(pl.String)
    if dtype == pl.String:
        col = col.str.to_datetime(column.format, strict=False)
    elif dtype == pl.Date:
        col = col.cast(pl.Datetime("us"))
    if gran is Granularity.DAY:
        return col.dt.strftime("%Y-%m-%d")
    if gran is Granularity.WEEK:
        return col.dt.truncate("1w").dt.strftime("%Y-%m-%d")
    if gran is Granularity.MONTH:
        return col.dt.strftime("%Y-%m")
    if gran is Granularity.QUARTER:
        return pl.concat_str(
            [col.dt.year().cast(pl.String), pl.lit("-Q"), col.dt.quarter().cast(pl.String)]
        )
    return col.dt.year().cast(pl.String)


def is_integer_time(column: Column, dtype: pl.DataType) -> bool:
    return dtype.is_integer() or (column.type is ColumnType.INTEGER and not dtype.is_temporal())


def period_ordinal(label: str, granularity: Granularity | None, integer: bool = False) -> int:
    """Consecutive periods have consecutive ordinals."""
    if integer:
        return int(label)
    gran = granularity or Granularity.MONTH
    if gran is Granularity.DAY:
        return date.fromisoformat(label).toordinal()
    if gran is Granularity.WEEK:
        return (date.fromisoformat(label).toordinal() - 1) // 7  # ordinal 1 is a Monday
    if gran is Granularity.MONTH:
        year, month = label.split("-")
        return int(year) * 12 + int(month) - 1
    if gran is Granularity.QUARTER:
        year, quarter = label.split("-Q")
        return int(year) * 4 + int(quarter) - 1
    return int(label)


def period_label(ordinal: int, granularity: Granularity | None, integer: bool = False) -> str:
    """The inverse of :func:`period_ordinal`."""
    if integer:
        return str(ordinal)
    gran = granularity or Granularity.MONTH
    if gran is Granularity.DAY:
        return date.fromordinal(ordinal).isoformat()
    if gran is Granularity.WEEK:
        return date.fromordinal(ordinal * 7 + 1).isoformat()
    if gran is Granularity.MONTH:
        year, month0 = divmod(ordinal, 12)
        return f"{year:04d}-{month0 + 1:02d}"
    if gran is Granularity.QUARTER:
        year, q0 = divmod(ordinal, 4)
        return f"{year:04d}-Q{q0 + 1}"
    return str(ordinal)


def period_noun(granularity: Granularity | None, integer: bool = False) -> str:
    if integer:
        return "period"
    return {
        Granularity.DAY: "day",
        Granularity.WEEK: "week",
        Granularity.MONTH: "month",
        Granularity.QUARTER: "quarter",
        Granularity.YEAR: "year",
    }[granularity or Granularity.MONTH]
