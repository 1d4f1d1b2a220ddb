"""The prepared frame: the masked rows reduced to the columns DP queries read (by public,
row-wise transforms), with the privacy unit hashed; large frames reach OpenDP through a
private temporary Parquet file.

>>> import polars as pl
>>> from privacy.contract import Contract
>>> contract = Contract.model_validate({"dataset": "d", "privacy_unit": "who",
...     "max_rows_per_unit": 2, "budget": {"epsilon_cap": 1},
...     "columns": {"who": {"role": "identifier", "action": "pseudonymize"}}})
>>> masked = pl.LazyFrame({"who": ["p1", "p1", "p2"]})
>>> prepared = prepare_frame(masked, contract, {"one": pl.lit(1)})
>>> prepared.rows, list(prepared.schema), prepared.path is None
(3, ['one', '__unit__'], True)
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from privacy.contract import Contract
from privacy.errors import InputRejected

#: the prepared frame's column holding the (hashed) privacy unit
UNIT = "__unit__"
#: prepared frames with at least this many rows reach OpenDP through a temporary file
SPILL_ROWS = 200_000
#: what polars raises when the masked frame lacks a column or type the queries read
_MISSING = (pl.exceptions.ColumnNotFoundError, pl.exceptions.InvalidOperationError)


@dataclass
class PreparedFrame:
    """The masked frame reduced to the columns DP queries read, by public row-wise transforms.

    It holds no identifier in clear: the privacy unit is already a pseudonym and is hashed
    again to a 64-bit integer. Two people whose hashes collide are one unit to OpenDP (their
    rows are truncated together); if a person added to a file collides with one already in
    it, OpenDP sees that unit's rows change rather than a unit added, which its ε does not
    cover. The chance is at most n/2^64 for a file of n people (about 5e-13 at 10 million),
    far below any δ in use, and is not charged to the ledger. Large frames live in a
    private temporary Parquet file (``path``) instead of memory; :meth:`close` deletes it
    (so does garbage collection).
    """

    frame: pl.DataFrame | None
    schema: dict[str, pl.DataType]
    has_unit: bool
    rows: int
    path: Path | None = None
    _cleanup: Any = field(default=None, repr=False)

    def source(self, columns: Sequence[str]) -> pl.LazyFrame:
        """The prepared rows restricted to ``columns``, as OpenDP should receive them."""
        if self.path is not None:
            return pl.scan_parquet(self.path).select(columns)
        assert self.frame is not None
        # select eagerly (zero-copy): OpenDP serializes the whole frame behind a lazy plan
        return self.frame.select(columns).lazy()

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()


def _reject_missing(contract: Contract, exc: Exception) -> InputRejected:
    return InputRejected(
        f"dataset '{contract.dataset}': the masked frame lacks a column or type the "
        f"contract's analyses need ({type(exc).__name__}); check the contract's columns"
    )


def _plan(
    masked: pl.LazyFrame,
    contract: Contract,
    columns: Mapping[str, pl.Expr],
    keep: Sequence[str] | None,
) -> pl.LazyFrame:
    lf = masked
    # one column at a time, in order: a column may read the ones declared before it
    for name, expr in columns.items():
        lf = lf.with_columns(expr.alias(name))
    names = [c for c in columns if keep is None or c in keep]
    if contract.privacy_unit is not None:
        lf = lf.with_columns(pl.col(contract.privacy_unit).cast(pl.String).hash(seed=0).alias(UNIT))
        names.append(UNIT)
    return lf.select(names)


def prepare_frame(
    masked: pl.LazyFrame,
    contract: Contract,
    columns: Mapping[str, pl.Expr],
    *,
    keep: Sequence[str] | None = None,
    spill_rows: int | None = SPILL_ROWS,
) -> PreparedFrame:
    """Compute ``columns`` (name -> row-wise expression on the masked frame, which may read
    columns declared before it) plus the hashed unit, and keep only those (only ``keep``
    among them, if given: intermediate columns need not be stored).

    Raises InputRejected if the file has more rows than ``contract.max_rows_per_file``
    (checked before anything is computed). With ``spill_rows`` rows or more the result is
    streamed to a temporary Parquet file (see :class:`PreparedFrame`).
    """
    lf = _plan(masked, contract, columns, keep)
    try:
        rows = int(masked.select(pl.len()).collect().item())
        schema = dict(lf.collect_schema())
    except _MISSING as exc:
        raise _reject_missing(contract, exc) from None
    if rows > contract.max_rows_per_file:
        raise InputRejected(
            f"dataset '{contract.dataset}': the file has {rows} rows, more than "
            f"max_rows_per_file={contract.max_rows_per_file}; raise it in the contract (noise "
            "on float sums grows with it) or split the file"
        )
    has_unit = contract.privacy_unit is not None
    if spill_rows is None or rows < spill_rows:
        try:
            frame = lf.collect()
        except _MISSING as exc:
            raise _reject_missing(contract, exc) from None
        return PreparedFrame(frame, dict(frame.schema), has_unit, frame.height)
    return _spill(lf, contract, schema, has_unit, rows)


def _spill(
    lf: pl.LazyFrame, contract: Contract, schema: dict[str, pl.DataType], has_unit: bool, rows: int
) -> PreparedFrame:
    """The prepared rows streamed to a private temporary Parquet file (deleted on close)."""
    folder = Path(tempfile.mkdtemp(prefix="dp-release-"))  # private: mode 0700
    path = folder / "prepared.parquet"
    try:
        # streamed: the prepared frame is never held in memory whole (sorting it by person
        # made OpenDP's truncation window faster but cost as much time, and memory)
        lf.sink_parquet(path, compression="lz4", statistics=False)
    except _MISSING as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise _reject_missing(contract, exc) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    prepared = PreparedFrame(None, schema, has_unit, rows, path)
    prepared._cleanup = weakref.finalize(prepared, shutil.rmtree, folder, ignore_errors=True)
    return prepared
