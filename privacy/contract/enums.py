"""The contract's words: column roles, value types, missing-value policies, granularities.

>>> Role("measure"), ColumnType.DATE.value
(<Role.MEASURE: 'measure'>, 'date')
>>> [m.value for m in Missing]
['allow', 'reject', 'drop_row', 'fill']
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    DIMENSION = "dimension"
    MEASURE = "measure"
    TIME = "time"
    TEXT = "text"
    IGNORE = "ignore"


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


class Missing(StrEnum):
    """What to do with an empty value (and with a bad value, once set to null)."""

    #: keep the null: a measure's sums and means use the values that are there, and the
    #: share missing is released next to them
    ALLOW = "allow"
    REJECT = "reject"  # any null rejects the file
    DROP_ROW = "drop_row"  # rows with a null here are dropped (counted in the report)
    #: a measure's null counts as the public ``fill`` value (for data where a blank really
    #: means a value, such as 0 hours)
    FILL = "fill"


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)
