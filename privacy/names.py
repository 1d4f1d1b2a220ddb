"""Dataset and file names: the one set of rules the contract, the pipeline's object keys and
the dashboard's upload page share.

Names are metadata chosen by people, not row values; they appear in object keys, runs and
the Prefect UI, so they are kept short and safe.

    >>> check_dataset("employees"), check_filename("team A (2025).csv")
    ('employees', 'team A (2025).csv')
    >>> check_dataset("../etc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    privacy.errors.InvalidKey: dataset name '../etc' is not allowed: ...
"""

from __future__ import annotations

import re

from privacy.errors import InvalidKey

DATASET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+() -]{0,199}$")
#: file name endings the pipeline reads, and how: CSV, JSON, JSON Lines, Parquet
FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def _show(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def check_dataset(name: str) -> str:
    """``name`` if it is a dataset name; otherwise InvalidKey saying the rule."""
    if not isinstance(name, str) or not DATASET_RE.fullmatch(name):  # `$` lets "x\n" by
        raise InvalidKey(
            f"dataset name {_show(name)} is not allowed: use letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def check_filename(name: str, *, readable: bool = False) -> str:
    """``name`` if it is a file name (``readable``: also of a format the pipeline reads)."""
    bad = not isinstance(name, str) or name in ("", ".", "..") or ".." in name
    if bad or not FILE_RE.fullmatch(name):
        raise InvalidKey(
            f"file name {_show(name)} is not allowed: use letters, digits, spaces and ._+()- "
            "(at most 200 characters, starting with a letter or digit, no '..', no slashes)"
        )
    if readable and not name.lower().endswith(tuple(FORMAT_BY_SUFFIX)):
        raise InvalidKey(
            f"file name {_show(name)} has an unsupported type: use CSV (.csv, .tsv, .txt), "
            "JSON (.json), JSON Lines (.jsonl, .ndjson) or Parquet (.parquet, .pq)"
        )
    return name
