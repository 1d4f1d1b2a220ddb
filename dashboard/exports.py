"""CSV exports of the aggregates behind a chart, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be
read by Excel, LibreOffice or Google Sheets as a formula (``=HYPERLINK(...)`` and friends:
OWASP "CSV injection"). Group keys come from data, so every such text cell is prefixed with
a single quote. Numbers stay numbers: a negative difference is written as a number, not as
text, because it is formatted here and not taken from the data.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> str:
    """The cell's text, prefixed with ``'`` when a spreadsheet would run it as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return ""
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def rows_to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """A CSV document (header + rows) with every text cell neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([neutralise_cell(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def safe_filename(*parts: str) -> str:
    """A download file name built from dataset and chart names (letters, digits, '-', '_')."""
    clean = "-".join(
        "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in part) for part in parts
    )
    return (clean.strip("-_") or "export")[:120] + ".csv"
