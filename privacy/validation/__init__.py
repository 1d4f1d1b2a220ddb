"""Conform a raw file to its contract and validate it, counting failures without values.

``conform`` makes the typed frame (a bad value becomes null, row by row); ``validate`` (or
``validation_counts`` then ``validation_report``) counts, per rule, the rows that fail;
``check`` does both for a file whose columns may not match.

>>> import polars as pl
>>> from privacy.contract import Contract
>>> contract = Contract.model_validate({"dataset": "d", "rows_are_people": True,
...     "budget": {"epsilon_cap": 1}, "columns": {"day": {"role": "time", "type": "date"}}})
>>> raw = pl.LazyFrame({"day": ["2025-01-31", "31/01/2025"]})
>>> validate(raw, conform(raw, contract), contract).nulled[0].describe_nulled()
"1 unreadable value in 'day'"
"""

from privacy.validation.conformance import DTYPES, check_columns, conform, conform_expr
from privacy.validation.counts import check, validate, validation_counts, validation_report
from privacy.validation.expectations import GE_RESULT_FORMAT, build_suite, load_user_expectations
from privacy.validation.report import GeResult, RuleResult, ValidationReport

__all__ = [
    "DTYPES",
    "GE_RESULT_FORMAT",
    "GeResult",
    "RuleResult",
    "ValidationReport",
    "build_suite",
    "check",
    "check_columns",
    "conform",
    "conform_expr",
    "load_user_expectations",
    "validate",
    "validation_counts",
    "validation_report",
]
