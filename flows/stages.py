"""The two data stages of a run, with their temporary files: validate-and-stage, then mask.

The raw file is parsed and conformed once: one streaming pass computes the validation
counts and stages the conformed columns masking reads in an Arrow IPC file; masking then
reads the staged copy (class table for k-anonymity, then the masked Parquet). Both the flow
and ``bench/masking.py`` call these functions, so the benchmark measures the real path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from privacy.contract import Contract
from privacy.masking import MASKED_PARQUET, kept_classes, mask, mask_columns, mask_counts
from privacy.validation import (
    DTYPES,
    ValidationReport,
    conform,
    validation_counts,
    validation_report,
)


def validate_and_stage(raw: pl.LazyFrame, contract: Contract, staged: Path) -> ValidationReport:
    """Validate ``raw`` against ``contract`` and stage its conformed columns at ``staged``."""
    conformed = conform(raw, contract)
    counts, _ = pl.collect_all(
        [
            validation_counts(raw, contract),
            conformed.select(mask_columns(contract)).sink_ipc(staged, lazy=True),
        ],
        engine="streaming",
    )
    return validation_report(raw, conformed, contract, counts)


@dataclass(frozen=True)
class MaskStats:
    rows_out: int
    rows_suppressed: int
    rows_dropped_missing: int


def _staged_frame(staged: Path, contract: Contract) -> pl.LazyFrame:
    read = mask_columns(contract)
    # columns that masking drops unread were not staged: give them back as typed nulls
    return pl.scan_ipc(staged).with_columns(
        pl.lit(None, dtype=DTYPES[c.type]).alias(n) for n, c in contract.columns.items() if n not in read
    )


def mask_staged(staged: Path, contract: Contract, key: bytes, out: Path, rows_in: int) -> MaskStats:
    """Mask the staged copy into ``out`` (Parquet) and count what masking removed."""
    frame = _staged_frame(staged, contract)
    keep = (
        kept_classes(frame, contract).collect(engine="streaming")
        if contract.quasi_identifiers and contract.anonymity.k > 1
        else None
    )
    mask(frame, contract, key, keep_classes=keep).sink_parquet(out, **MASKED_PARQUET)
    rows_out = int(pl.scan_parquet(out).select(pl.len()).collect().item())
    suppressed = dropped = 0
    if rows_out != rows_in:
        counts = mask_counts(frame, contract).collect(engine="streaming").row(0, named=True)
        suppressed, dropped = int(counts["rows_suppressed"]), int(counts["rows_dropped_missing"])
    return MaskStats(rows_out, suppressed, dropped)
