"""The DP engine: OpenDP measurements planned from a contract, calibrated once, reused.

Everything that touches OpenDP lives here. ``analytics`` describes *what* to release as
:class:`QuerySpec` values: :class:`Agg` aggregates (noisy counts, fixed-point sums,
quantiles) that share one grouping, with a relative weight each; this module turns each
spec into ONE OpenDP measurement over the prepared frame and releases it.

Privacy, step by step:

* **Privacy unit.** With ``contract.privacy_unit`` the input metric is OpenDP's
  ``SymmetricIdDistance`` on that column (d_in = 1 person) and every plan starts with
  ``truncate_per_group(max_rows_per_unit)``, keeping a random sample of each person's rows,
  never the first ones in file order (and, for private group keys, a bound on the groups
  one person may touch). A ``per_unit`` spec instead reduces the frame to one row per
  person (``group_by(unit)``) first, so the distinct-people count has sensitivity 1. With
  ``rows_are_people`` the metric is the symmetric distance with d_in = 1 row.
* **Public parameters only.** Clamping bounds, histogram edges, quantile candidates, group
  keys and ``max_rows_per_file`` (OpenDP's ``max_length``) come from the contract. Groups
  whose keys the contract does not declare are released only through OpenDP's threshold
  (δ > 0).
* **One measurement per grouping, ε split inside.** Every aggregate of a spec gets its own
  explicit noise scale, chosen so that its share of the spec's ε is proportional to its
  weight. A probe at ``global_scale=1`` gives each aggregate's scale-to-ε constant;
  ε grows like 1/scale for the Laplace and exponential mechanisms used here, so the scales
  follow in closed form, and the measurement's own privacy map then verifies the total
  (scaling every scale up if needed).
* **Calibration cache.** The solved scales (and threshold) are stored in a
  :class:`CalibrationCache` keyed by contract fingerprint, spec and loss share; later files
  build the measurement directly from them. Either way the privacy map is evaluated
  before anything runs, and a measurement whose loss exceeds its share is never invoked.
* **Noise** comes only from OpenDP's samplers (invoked by ``measurement(frame)``).

Speed: OpenDP's Python binding hands a frame to its Rust core by serializing it. Large
prepared frames (``SPILL_ROWS`` rows and more) are therefore written once to a private
temporary Parquet file and each measurement receives a scan of it (a few bytes of plan; the
Rust side reads only the columns it needs). :meth:`PreparedFrame.close` deletes the file.

Accuracy: :class:`Noise` knows each released column's distribution and scale and gives the
half-width of a (1-α) interval through ``opendp.accuracy`` (Laplace and discrete Laplace).
Quantiles (exponential mechanism) have no additive accuracy: their intervals are None.
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import polars as pl

from privacy.budget import PrivacyLoss
from privacy.contract import Contract
from privacy.errors import ContractError, InputRejected, PipelineError

log = logging.getLogger(__name__)

#: the prepared frame's column holding the (hashed) privacy unit
UNIT = "__unit__"
#: the output column of every grouped query's row count (OpenDP thresholds on it)
LEN = "len"
#: per-unit queries: a person's rows, whether they exceed max_rows_per_unit, and by how
#: many rows (at most max_rows_per_unit of them: a bounded contribution)
ROWS, OVER, EXCESS = "__rows__", "__over__", "__excess__"
#: per-unit queries: the prefix of a person's share of rows with a 0/1 column set
SHARE = "__share__:"
#: prepared frames with at least this many rows reach OpenDP through a temporary file
SPILL_ROWS = 200_000
_NO_THRESHOLD = 2**32 - 1
_TOLERANCE = 1e-9


def _dp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


# --------------------------------------------------------------------------- calibration cache


class CalibrationCache(Protocol):
    """Where solved noise scales (and thresholds) are kept between files.

    Keys name the contract fingerprint, the query and the loss share, so a changed contract
    never reuses an old scale. Values are checked against the privacy map before use, so a
    wrong value costs a recalibration, never privacy.
    """

    def get(self, key: str) -> float | None: ...

    def put(self, key: str, scale: float) -> None: ...


class MemoryCalibrationCache:
    """A dict-backed :class:`CalibrationCache` (tests, one process)."""

    def __init__(self) -> None:
        self._values: dict[str, float] = {}

    def get(self, key: str) -> float | None:
        return self._values.get(key)

    def put(self, key: str, scale: float) -> None:
        self._values[key] = float(scale)

    def __len__(self) -> int:
        return len(self._values)


# --------------------------------------------------------------------------- aggregates

#: fixed-point sums use integers up to this magnitude per row (i64 sums stay exact up to
#: max_rows_per_file = 10^9 rows)
FIXED_POINT_RANGE = 1_000_000_000


def fixed_point(
    expr: pl.Expr, bounds: tuple[float, float]
) -> tuple[pl.Expr, tuple[int, int], float]:
    """``expr`` (floats within public ``bounds``) as integers of ``step`` units.

    Integer sums need no float-rounding allowance in OpenDP's sensitivity, so their noise
    does not grow with ``max_length`` or the number of groups (float sums over private
    groups even need a public bound on the group count). The rounding error is at most
    step/2 per row, with step = max(|lower|, |upper|) / 10^9.
    """
    lo, hi = float(bounds[0]), float(bounds[1])
    magnitude = max(abs(lo), abs(hi)) or 1.0
    step = magnitude / FIXED_POINT_RANGE
    ilo, ihi = math.floor(lo / step), math.ceil(hi / step)
    as_int = (expr.clip(lo, hi) / step).round().cast(pl.Int64).clip(ilo, ihi)
    return as_int, (ilo, ihi), step


@dataclass(frozen=True)
class Agg:
    """One DP aggregate of a query.

    ``kind``: ``len`` (a signed noisy row count: noise is not clamped at zero, so intervals
    stay honest), ``sum`` (of ``column`` clamped to ``bounds``; integer bounds for
    fixed-point columns) or ``quantile`` (``alpha``, chosen among public ``candidates`` by
    the exponential mechanism). ``step`` and ``offset`` convert the released column into
    published units, value × step + offset (fixed-point sums, centred quantiles).
    ``weight``: the aggregate's relative share of its query's ε.
    """

    name: str
    kind: Literal["len", "sum", "quantile"]
    column: str | None = None
    bounds: tuple[float, float] | None = None
    alpha: float = 0.5
    candidates: tuple[float, ...] = ()
    step: float = 1.0
    offset: float = 0.0
    weight: float = 1.0

    def expr(self, scale: float | None = None) -> pl.Expr:
        """The OpenDP expression (``scale`` None: OpenDP's ``global_scale`` decides)."""
        if self.kind == "len":
            return _dp().len(signed=True, scale=scale).alias(self.name)
        assert self.column is not None
        col: Any = pl.col(self.column)
        if self.kind == "sum":
            assert self.bounds is not None
            lo, hi = self.bounds
            b = (int(lo), int(hi)) if isinstance(lo, int) and isinstance(hi, int) else (lo, hi)
            return col.dp.sum(b, scale=scale).alias(self.name)  # type: ignore[no-any-return]
        return col.dp.quantile(self.alpha, list(self.candidates), scale=scale).alias(  # type: ignore[no-any-return]
            self.name
        )


def count_agg(name: str = LEN, weight: float = 1.0) -> Agg:
    return Agg(name, "len", weight=weight)


def int_sum_agg(
    column: str, bounds: tuple[int, int], name: str, step: float = 1.0, weight: float = 1.0
) -> Agg:
    """A noisy sum of integer ``column`` within ``bounds`` (published as sum × ``step``)."""
    return Agg(name, "sum", column, (int(bounds[0]), int(bounds[1])), step=step, weight=weight)


def quantile_agg(
    column: str,
    alpha: float,
    candidates: Sequence[float],
    name: str,
    step: float = 1.0,
    offset: float = 0.0,
    weight: float = 1.0,
) -> Agg:
    """A DP quantile of ``column`` among public ``candidates`` (column units)."""
    return Agg(
        name,
        "quantile",
        column,
        alpha=alpha,
        candidates=tuple(candidates),
        step=step,
        offset=offset,
        weight=weight,
    )


# --------------------------------------------------------------------------- noise and accuracy


@dataclass(frozen=True)
class Noise:
    """The noise OpenDP adds to one released column.

    ``raw_scale`` is OpenDP's scale on the column it noised; ``step`` converts that column's
    units into the published ones (fixed-point sums, see :func:`fixed_point`).
    """

    distribution: str  # "Integer Laplace", "Float Laplace", "ExponentialMin", …
    raw_scale: float
    step: float = 1.0

    @property
    def scale(self) -> float:
        return self.raw_scale * self.step

    @property
    def is_laplace(self) -> bool:
        return self.distribution in ("Integer Laplace", "Float Laplace")

    def accuracy(self, alpha: float = 0.05) -> float | None:
        """Half-width a with P(|noise| > a) <= alpha, from ``opendp.accuracy``; None if the
        mechanism has no additive accuracy (quantiles)."""
        if self.raw_scale == 0:
            return 0.0
        from opendp.accuracy import (
            discrete_laplacian_scale_to_accuracy,
            laplacian_scale_to_accuracy,
        )

        if self.distribution == "Integer Laplace":
            return float(discrete_laplacian_scale_to_accuracy(self.raw_scale, alpha)) * self.step
        if self.distribution == "Float Laplace":
            return float(laplacian_scale_to_accuracy(self.raw_scale, alpha)) * self.step
        return None

    @property
    def variance(self) -> float | None:
        b = self.raw_scale
        if b == 0:
            return 0.0
        if self.distribution == "Float Laplace":
            return 2 * b * b * self.step**2
        if self.distribution == "Integer Laplace":
            q = math.exp(-1 / b)
            return 2 * q / (1 - q) ** 2 * self.step**2
        return None


# --------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class QuerySpec:
    """One OpenDP measurement: aggregates, optionally per group.

    ``keys``: a public key frame (columns = ``by``) from the contract; groups are then
    exactly these keys (a left join of the keys with the aggregates; rows whose key is not
    among them are not released). With ``by`` and no keys, the key set is private and
    groups are released only above OpenDP's threshold on the ``len`` column, which must
    then be one of ``aggs``. ``per_unit``: aggregate one row per privacy unit (the
    distinct-people count), with no grouping; its aggregates may read the person's row
    count ``ROWS``, the indicator ``OVER`` (more rows than ``max_rows_per_unit``) and
    ``EXCESS`` (rows beyond it, at most ``max_rows_per_unit`` of them), and for each 0/1
    column ``c`` of ``person_shares`` the person's share of rows where it is 1,
    ``SHARE + c`` (in [0, 1]: each person counts once, whatever their rows). ``present``:
    columns (0/1 indicators) the rows must have set to 1 to take part (a row-wise filter
    before the per-person truncation: quantiles of the values that are there).
    """

    id: str
    aggs: tuple[Agg, ...]
    by: tuple[str, ...] = ()
    keys: pl.DataFrame | None = None
    per_unit: bool = False
    present: tuple[str, ...] = ()
    person_shares: tuple[str, ...] = ()
    #: (column, "min" or "max"): group one value per person, that person's smallest or
    #: largest of ``column``, under the name ``by[0]`` (a person is in one group)
    reduce: tuple[str, Literal["min", "max"]] | None = None

    @property
    def thresholded(self) -> bool:
        return bool(self.by) and self.keys is None

    @property
    def weight(self) -> float:
        return sum(a.weight for a in self.aggs)

    def digest(self) -> str:
        """What shapes the measurement besides the contract: aggregates, weights, grouping."""
        total = self.weight or 1.0
        parts = [
            (a.name, a.kind, a.column, a.bounds, a.alpha, a.candidates, round(a.weight / total, 12))
            for a in self.aggs
        ]
        keys = None if self.keys is None else self.keys.hash_rows().to_list()
        blob = repr(
            (parts, self.by, keys, self.per_unit, self.present, self.person_shares, self.reduce)
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class QueryResult:
    """What one measurement released."""

    query_id: str
    frame: pl.DataFrame  # DP output: aggregates per group (keys public or thresholded)
    noise: dict[str, Noise]  # output column -> its noise
    loss: PrivacyLoss  # from the measurement's privacy map
    threshold: int | None = None
    #: output column -> its share of ``loss.epsilon`` (by weight; sums to loss.epsilon)
    epsilon_of: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """A measurement ready to invoke, with the explicit noise scales it was built from."""

    measurement: Any
    scales: dict[str, float]
    threshold: int | None
    loss: PrivacyLoss


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
    lf = masked
    # one column at a time, in order: a column may read the ones declared before it
    for name, expr in columns.items():
        lf = lf.with_columns(expr.alias(name))
    names = [c for c in columns if keep is None or c in keep]
    if contract.privacy_unit is not None:
        lf = lf.with_columns(pl.col(contract.privacy_unit).cast(pl.String).hash(seed=0).alias(UNIT))
        names.append(UNIT)
    lf = lf.select(names)
    errors = (pl.exceptions.ColumnNotFoundError, pl.exceptions.InvalidOperationError)
    try:
        rows = int(masked.select(pl.len()).collect().item())
        schema = dict(lf.collect_schema())
    except errors as exc:
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
        except errors as exc:
            raise _reject_missing(contract, exc) from None
        return PreparedFrame(frame, dict(frame.schema), has_unit, frame.height)
    folder = Path(tempfile.mkdtemp(prefix="dp-release-"))  # private: mode 0700
    path = folder / "prepared.parquet"
    try:
        # streamed: the prepared frame is never held in memory whole (sorting it by person
        # made OpenDP's truncation window faster but cost as much time, and memory)
        lf.sink_parquet(path, compression="lz4", statistics=False)
    except errors as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise _reject_missing(contract, exc) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    prepared = PreparedFrame(None, schema, has_unit, rows, path)
    prepared._cleanup = weakref.finalize(prepared, shutil.rmtree, folder, ignore_errors=True)
    return prepared


_ATOM_TYPES: dict[type[pl.DataType], str] = {
    pl.Float64: "f64",
    pl.Float32: "f32",
    pl.Int64: "i64",
    pl.Int32: "i32",
    pl.UInt64: "u64",
    pl.UInt32: "u32",
    pl.Boolean: "bool",
    pl.String: "String",
}


def _input_domain(schema: Mapping[str, pl.DataType], max_length: int) -> Any:
    dp = _dp()
    series = []
    for name, dtype in schema.items():
        atom_t = _ATOM_TYPES.get(type(dtype))
        if atom_t is None:
            raise PipelineError(f"column '{name}' has type {dtype} that the DP engine cannot use")
        floating = atom_t in ("f64", "f32")
        atom = dp.atom_domain(T=atom_t, nan=False) if floating else dp.atom_domain(T=atom_t)
        series.append(dp.series_domain(name, atom))
    domain = dp.lazyframe_domain(series)
    return dp.with_margin(domain, dp.polars.Margin(by=[], max_length=max_length))


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:20]


#: ε at a given scale, relative to a Laplace aggregate's, by OpenDP distribution (a first
#: guess only: the measurement's privacy map has the last word)
_EPS_WEIGHT = {"ExponentialMin": 2.0}


class ReleaseEngine:
    """Builds, calibrates, verifies and runs OpenDP measurements for one contract and file."""

    def __init__(
        self,
        contract: Contract,
        prepared: PreparedFrame,
        cache: CalibrationCache | None = None,
    ) -> None:
        dp = _dp()
        self.contract = contract
        self.prepared = prepared
        self.cache: CalibrationCache = cache if cache is not None else MemoryCalibrationCache()
        self._domains: dict[tuple[str, ...], Any] = {}
        k = contract.max_rows_per_unit
        if prepared.has_unit:
            self._metric, self._d_in = dp.unit_of(contributions=1, identifier=UNIT)
        else:
            self._metric, self._d_in = dp.unit_of(contributions=k)
        self._fingerprint = contract.fingerprint()

    # ----------------------------------------------------------------- plans

    def columns(self, spec: QuerySpec) -> tuple[str, ...]:
        """The prepared columns ``spec`` reads: each measurement sees only those."""
        needed = set(spec.by) | set(spec.present) | set(spec.person_shares)
        if spec.reduce is not None:
            needed = (needed - set(spec.by)) | {spec.reduce[0]}
        for a in spec.aggs:
            if a.column is not None:
                needed.add(a.column)
        if self.prepared.has_unit:
            needed.add(UNIT)
        return tuple(c for c in self.prepared.schema if c in needed)

    def _domain(self, spec: QuerySpec) -> Any:
        cols = self.columns(spec)
        if cols not in self._domains:
            self._domains[cols] = _input_domain(
                {c: self.prepared.schema[c] for c in cols}, self.contract.max_rows_per_file
            )
        return self._domains[cols]

    def plan(self, spec: QuerySpec, scales: Mapping[str, float] | None = None) -> pl.LazyFrame:
        """The polars plan OpenDP analyses (built on an empty frame: no data in it)."""
        k = self.contract.max_rows_per_unit
        aggs = [a.expr(None if scales is None else scales[a.name]) for a in spec.aggs]
        lf = pl.LazyFrame(schema={c: self.prepared.schema[c] for c in self.columns(spec)})
        if spec.per_unit:
            if not self.prepared.has_unit or spec.by:
                raise PipelineError(f"query '{spec.id}': per-unit queries need a privacy unit")
            # one row per person: a person changes the aggregates below by at most 1 row
            rows = pl.col(ROWS).cast(pl.Int64)
            shares = [pl.col(c).mean().alias(SHARE + c) for c in spec.person_shares]
            per_person = lf.group_by(UNIT).agg(pl.len().alias(ROWS), *shares)
            return per_person.with_columns(
                (rows > k).cast(pl.Int64).alias(OVER), (rows - k).clip(0, k).alias(EXCESS)
            ).select(*aggs)
        for column in spec.present:
            lf = lf.filter(pl.col(column) == 1)
        if spec.reduce is not None:
            if not self.prepared.has_unit or len(spec.by) != 1:
                raise PipelineError(f"query '{spec.id}': a per-person value needs a privacy unit")
            column, how = spec.reduce
            value = pl.col(column).min() if how == "min" else pl.col(column).max()
            per_person = lf.group_by(UNIT).agg(value.alias(spec.by[0]))
            grouped = per_person.group_by(*spec.by).agg(*aggs)
            if spec.keys is None:
                return grouped
            return spec.keys.lazy().join(grouped, how="left", on=list(spec.by), nulls_equal=True)
        if self.prepared.has_unit:
            # truncate_per_group(k, keep="sample"): at most k rows per person, a uniformly
            # random k of them. Keeping the first k in file order would be as private but
            # biased: in a file sorted by date, people with many rows would lose their
            # later rows only, and a flat trend would read as a fall.
            lf = lf.filter(pl.int_range(pl.len()).shuffle().over(UNIT) < k)
        if not spec.by:
            return lf.select(*aggs)
        if self.prepared.has_unit and spec.keys is None:
            # truncate_num_groups: a person touches at most k groups (OpenDP reads `< k + 1`
            # as the bound k+1 and takes the minimum with the k rows kept above). After the
            # row truncation a person has at most k rows, so at most k groups: this filter
            # never drops a row (which groups it would keep does not matter); it is there
            # for OpenDP to see the bound.
            ranks = pl.struct(*spec.by).rank("dense")
            lf = lf.filter(ranks.over(UNIT) < k + 1)
        grouped = lf.group_by(*spec.by).agg(*aggs)
        if spec.keys is None:
            return grouped
        return spec.keys.lazy().join(grouped, how="left", on=list(spec.by), nulls_equal=True)

    def _make(
        self,
        spec: QuerySpec,
        scales: Mapping[str, float] | None,
        threshold: int | None,
    ) -> Any:
        dp = _dp()
        measure = dp.max_divergence()
        if spec.thresholded:
            measure = dp.approximate(measure)
        return dp.m.make_private_lazyframe(
            self._domain(spec),
            self._metric,
            measure,
            self.plan(spec, scales),
            global_scale=1.0 if scales is None else None,
            threshold=threshold,
        )

    def _loss_of(self, meas: Any) -> PrivacyLoss:
        out = meas.map(self._d_in)
        if isinstance(out, tuple):
            return PrivacyLoss(float(out[0]), float(out[1]))
        return PrivacyLoss(float(out), 0.0)

    def _eps_of(self, spec: QuerySpec, scales: Mapping[str, float] | None) -> float:
        meas = self._make(spec, scales, _NO_THRESHOLD if spec.thresholded else None)
        out = meas.map(self._d_in)
        return float(out[0]) if isinstance(out, tuple) else float(out)

    def _solve_scales(self, spec: QuerySpec, epsilon: float) -> dict[str, float]:
        """Explicit scales giving each aggregate ε ∝ its weight, all together ≤ ``epsilon``."""
        dp = _dp()
        probe = self._make(spec, None, _NO_THRESHOLD if spec.thresholded else None)
        out = probe.map(self._d_in)
        eps1 = float(out[0]) if isinstance(out, tuple) else float(out)
        summary = dp.summarize_polars_measurement(probe)
        unit_scale = {str(r["column"]): float(r["scale"]) for r in summary.iter_rows(named=True)}
        rel = {
            str(r["column"]): _EPS_WEIGHT.get(str(r["distribution"]), 1.0)
            for r in summary.iter_rows(named=True)
        }
        total_rel = sum(rel.get(a.name, 1.0) for a in spec.aggs)
        total_w = spec.weight
        scales: dict[str, float] = {}
        for a in spec.aggs:
            # κ: this aggregate's ε × scale (ε ∝ 1/scale); its target ε: by weight
            kappa = eps1 * rel.get(a.name, 1.0) / total_rel * unit_scale[a.name]
            scales[a.name] = kappa / (epsilon * a.weight / total_w) * (1 + _TOLERANCE)
        for _ in range(20):
            eps = self._eps_of(spec, scales)
            if eps <= epsilon:
                return scales
            factor = (eps / epsilon) * (1 + 1e-6)
            scales = {name: s * factor for name, s in scales.items()}
        raise PipelineError(
            f"dataset '{self.contract.dataset}': query '{spec.id}' could not be calibrated "
            f"within ε={epsilon:g}; nothing was released"
        )

    def _solve_threshold(self, spec: QuerySpec, scales: Mapping[str, float], delta: float) -> int:
        """The smallest threshold whose δ fits (bisection; δ falls as the threshold rises)."""
        dp = _dp()

        def ok(t: int) -> bool:
            try:
                return self._loss_of(self._make(spec, scales, t)).delta <= delta
            except dp.OpenDPException:  # e.g. "threshold must be greater than k"
                return False

        lo, hi = 1, 2**31 - 1
        if not ok(hi):
            raise PipelineError(
                f"dataset '{self.contract.dataset}': no threshold meets δ={delta:g} for query "
                f"'{spec.id}'; raise budget.delta in the contract"
            )
        while lo < hi:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid + 1
        return lo

    def _key(self, spec: QuerySpec, share: PrivacyLoss) -> str:
        """A short cache key (stores keep keys to 255 characters): the contract's
        fingerprint and a digest of the query, its aggregates and weights, and the share."""
        what = f"{spec.id}|{spec.digest()}|eps={share.epsilon!r}|delta={share.delta!r}"
        return f"{self._fingerprint}|{_short(what)}"

    def resolve(self, spec: QuerySpec, share: PrivacyLoss) -> Resolved:
        """A measurement for ``spec`` whose privacy map is within ``share`` (checked here)."""
        if spec.thresholded and share.delta <= 0:
            raise ContractError(
                f"dataset '{self.contract.dataset}': query '{spec.id}' groups by "
                f"{', '.join(spec.by)} without public keys, which needs δ > 0: declare keys in "
                "the contract or set budget.delta"
            )
        key = self._key(spec, share)
        cached = {a.name: self.cache.get(f"{key}|scale:{_short(a.name)}") for a in spec.aggs}
        threshold_f = self.cache.get(key + "|threshold") if spec.thresholded else None
        if all(v is not None for v in cached.values()) and (
            threshold_f is not None or not spec.thresholded
        ):
            scales = {n: float(v) for n, v in cached.items() if v is not None}
            resolved = self._try(spec, scales, threshold_f, share)
            if resolved is not None:
                return resolved
            log.warning(
                "cached noise scales for query %s fail their privacy check; recalibrating",
                spec.id,
            )
        scales = self._solve_scales(spec, share.epsilon)
        threshold: int | None = None
        if spec.thresholded:
            threshold = self._solve_threshold(spec, scales, share.delta)
        resolved = self._try(spec, scales, threshold, share)
        if resolved is None:
            raise PipelineError(
                f"dataset '{self.contract.dataset}': query '{spec.id}' could not be calibrated "
                f"within {share}; nothing was released"
            )
        for name, scale in scales.items():
            self.cache.put(f"{key}|scale:{_short(name)}", scale)
        if threshold is not None:
            self.cache.put(key + "|threshold", float(threshold))
        return resolved

    def _try(
        self,
        spec: QuerySpec,
        scales: dict[str, float],
        threshold: float | int | None,
        share: PrivacyLoss,
    ) -> Resolved | None:
        thr = None if threshold is None else int(threshold)
        if not all(math.isfinite(s) and s > 0 for s in scales.values()):
            return None
        meas = self._make(spec, scales, thr)
        loss = self._loss_of(meas)
        if not loss.fits_within(share):
            return None
        return Resolved(meas, scales, thr, loss)

    # ----------------------------------------------------------------- release

    def release(self, spec: QuerySpec, share: PrivacyLoss) -> QueryResult:
        """Resolve (or reuse) the measurement for ``spec`` and invoke it once on the file."""
        return self.invoke(spec, self.resolve(spec, share))

    def invoke(self, spec: QuerySpec, resolved: Resolved) -> QueryResult:
        """Run a resolved measurement on the prepared frame (each call draws fresh noise)."""
        dp = _dp()
        summary = dp.summarize_polars_measurement(resolved.measurement)
        # sums' noise in published units; a quantile's scale is in its score units (ranks)
        steps = {a.name: a.step for a in spec.aggs if a.kind != "quantile"}
        noise = {
            str(row["column"]): Noise(
                str(row["distribution"]), float(row["scale"]), steps.get(str(row["column"]), 1.0)
            )
            for row in summary.iter_rows(named=True)
        }
        try:
            frame = resolved.measurement(self.prepared.source(self.columns(spec))).collect()
        except dp.OpenDPException as exc:
            raise PipelineError(
                f"dataset '{self.contract.dataset}': OpenDP refused query '{spec.id}' "
                f"({exc.variant}); nothing was released"
            ) from None
        scaled = [
            (pl.col(a.name).cast(pl.Float64) * a.step + a.offset).alias(a.name)
            for a in spec.aggs
            if (a.step != 1.0 or a.offset != 0.0) and a.name in frame.columns
        ]
        if scaled:
            frame = frame.with_columns(scaled)
        total_w = spec.weight or 1.0
        eps = resolved.loss.epsilon
        epsilon_of = {a.name: eps * a.weight / total_w for a in spec.aggs}
        return QueryResult(spec.id, frame, noise, resolved.loss, resolved.threshold, epsilon_of)


# --------------------------------------------------------------------------- loss split


@dataclass
class LossPlan:
    """Splits a per-file loss: ε over queries in proportion to their aggregates' weights,
    δ evenly over the thresholded queries."""

    total: PrivacyLoss
    specs: list[QuerySpec] = field(default_factory=list)

    def share(self, spec: QuerySpec) -> PrivacyLoss:
        weight = sum(s.weight for s in self.specs) or 1.0
        n_thr = sum(1 for s in self.specs if s.thresholded)
        delta = self.total.delta / n_thr if spec.thresholded and n_thr else 0.0
        return PrivacyLoss(self.total.epsilon * spec.weight / weight, delta)
