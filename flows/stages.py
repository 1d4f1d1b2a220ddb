"""The two data stages of a run, with their temporary files: validate-and-stage, then mask.

The raw file is parsed and conformed once: one streaming pass computes the validation
counts and stages the conformed columns masking reads in an Arrow IPC file. Masking then
reads the staged copy and writes two Parquet files:

* the **release input** (drop-row policies, generalization, pseudonyms: row-wise steps
  only), which the DP releases read;
* the **masked** file for downstream use: the release input with small quasi-identifier
  classes suppressed (k-anonymity, l-diversity). Suppression is global and data-dependent,
  so it never shapes what OpenDP reads (``privacy.masking``, ARCHITECTURE invariant 8).

Pseudonyms are computed once, for the release input; suppression reads that file back.
Both the flow and ``bench/masking.py`` call these functions, so the benchmark measures the
real path.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from privacy.contract import Contract
from privacy.keys import KEY_ID_METADATA, key_id
from privacy.masking import (
    MASKED_PARQUET,
    mask_columns,
    masked_kept_classes,
    release_input,
    suppress_small_classes,
    suppresses,
)
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
    #: rows of the masked (k-anonymous) file
    rows_out: int
    #: rows of the release input (every row but those dropped by missing: drop_row)
    rows_released: int
    #: rows the masked file lacks for k-anonymity / l-diversity (the release input has them)
    rows_suppressed: int
    rows_dropped_missing: int


def _staged_frame(staged: Path, contract: Contract) -> pl.LazyFrame:
    read = mask_columns(contract)
    # columns that masking drops unread were not staged: give them back as typed nulls
    return pl.scan_ipc(staged).with_columns(
        pl.lit(None, dtype=DTYPES[c.type]).alias(n) for n, c in contract.columns.items() if n not in read
    )


def _rows(path: Path) -> int:
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def mask_staged(
    staged: Path, contract: Contract, key: bytes, out: Path, rows_in: int, release_out: Path
) -> MaskStats:
    """Write the release input to ``release_out`` and the masked file to ``out`` (both
    Parquet) from the staged copy, and count what each step removed."""
    frame = _staged_frame(staged, contract)
    # the key's public id rides along: dataset releases union only files of one key
    release_input(frame, contract, key).sink_parquet(
        release_out, **MASKED_PARQUET, metadata={KEY_ID_METADATA: key_id(key)}
    )
    released = _rows(release_out)
    if suppresses(contract):
        rel = pl.scan_parquet(release_out)
        keep = masked_kept_classes(rel, contract).collect(engine="streaming")
        suppress_small_classes(rel, contract, keep_classes=keep).sink_parquet(
            out, **MASKED_PARQUET
        )
        rows_out = _rows(out)
    else:  # nothing to suppress: the masked file is the release input
        try:
            os.link(release_out, out)
        except OSError:
            shutil.copyfile(release_out, out)
        rows_out = released
    return MaskStats(rows_out, released, released - rows_out, rows_in - released)
