"""The DP engine: OpenDP measurements planned from a contract, calibrated once, reused.

Everything that touches OpenDP lives here. ``analytics`` describes *what* to release as
:class:`QuerySpec` values (aggregates built with :func:`dp_len`, :func:`dp_sum`, …, an
optional grouping and public keys); this module turns each into an OpenDP measurement over
the prepared frame and releases it.

Privacy, step by step:

* **Privacy unit.** With ``contract.privacy_unit`` the input metric is OpenDP's
  ``SymmetricIdDistance`` on that column (d_in = 1 person) and every plan starts with
  ``truncate_per_group(max_rows_per_unit)`` (and, for private group keys, a bound on the
  groups one person may touch). Without a unit column the metric is the symmetric distance
  with d_in = ``max_rows_per_unit`` rows.
* **Public parameters only.** Clamping bounds, histogram edges, quantile candidates, group
  keys and ``max_rows_per_file`` (OpenDP's ``max_length``) come from the contract. Groups
  whose keys the contract does not declare are released only through OpenDP's threshold
  (δ > 0).
* **Calibration.** The noise scale depends only on the contract and the plan, never on the
  rows. ε grows like 1/scale for the Laplace mechanisms used here, so the scale is solved
  with one probe measurement plus a few verification steps (falling back to OpenDP's own
  ``binary_search``) instead of a full binary search per file. The solved scale (and
  threshold) is stored in a :class:`CalibrationCache` keyed by contract fingerprint, query
  id and loss share; later files build the measurement directly from it. Either way, the
  measurement's own privacy map is evaluated before anything runs, and a measurement whose
  loss exceeds its share is never invoked.
* **Noise** comes only from OpenDP's samplers (invoked by ``measurement(frame)``).

Accuracy: :class:`Noise` knows each released column's distribution and scale and gives the
half-width of a (1-α) interval through ``opendp.accuracy`` (Laplace and discrete Laplace).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from privacy.budget import PrivacyLoss
from privacy.contract import Contract
from privacy.errors import ContractError, InputRejected, PipelineError

log = logging.getLogger(__name__)

#: the prepared frame's column holding the (hashed) privacy unit
UNIT = "__unit__"
#: the output column of every query's row count (OpenDP thresholds on it)
LEN = "len"
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


def dp_len(name: str = LEN) -> pl.Expr:
    """A noisy row count (signed: noise is not clamped at zero, so intervals stay honest)."""
    return _dp().len(signed=True).alias(name)


def dp_sum(column: str, bounds: tuple[float, float], name: str) -> pl.Expr:
    """A noisy sum of ``column`` clamped to the public ``bounds``."""
    lo, hi = float(bounds[0]), float(bounds[1])
    return pl.col(column).dp.sum((lo, hi)).alias(name)  # type: ignore[attr-defined]


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


def dp_int_sum(column: str, bounds: tuple[int, int], name: str) -> pl.Expr:
    """A noisy sum of an integer column clamped to ``bounds``."""
    return pl.col(column).dp.sum((int(bounds[0]), int(bounds[1]))).alias(name)  # type: ignore[attr-defined]


def dp_n_unique(column: str, name: str) -> pl.Expr:
    """A noisy count of distinct values (of the privacy unit, typically)."""
    return pl.col(column).dp.n_unique(signed=True).alias(name)  # type: ignore[attr-defined]


def dp_quantile(column: str, alpha: float, candidates: Sequence[float], name: str) -> pl.Expr:
    """A DP quantile chosen among public ``candidates`` (exponential mechanism)."""
    cands = [float(c) for c in candidates]
    return pl.col(column).dp.quantile(alpha, cands).alias(name)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- noise and accuracy


@dataclass(frozen=True)
class Noise:
    """The noise OpenDP adds to one released column.

    ``raw_scale`` is OpenDP's scale on the column it noised; ``step`` converts that column's
    units into the published ones (fixed-point sums, see :func:`dp_fixed_sum`).
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
    exactly these keys (a left join of the keys with the aggregates). With ``by`` and no
    keys, the key set is private and groups are released only above OpenDP's threshold on
    the ``len`` column, which must then be one of ``aggs``. ``filters`` drop rows before
    aggregation (row-by-row predicates on public conditions, e.g. a null period).
    """

    id: str
    aggs: tuple[pl.Expr, ...]
    by: tuple[str, ...] = ()
    keys: pl.DataFrame | None = None
    filters: tuple[pl.Expr, ...] = ()
    #: output column -> unit of its integer values (fixed-point sums); applied on release
    steps: tuple[tuple[str, float], ...] = ()

    @property
    def thresholded(self) -> bool:
        return bool(self.by) and self.keys is None


@dataclass(frozen=True)
class QueryResult:
    """What one measurement released."""

    query_id: str
    frame: pl.DataFrame  # DP output: aggregates per group (keys public or thresholded)
    noise: dict[str, Noise]  # output column -> its noise
    loss: PrivacyLoss  # from the measurement's privacy map
    threshold: int | None = None


@dataclass(frozen=True)
class PreparedFrame:
    """The masked frame reduced to the columns DP queries read, by public row-wise transforms.

    ``frame`` holds no identifier in clear: the privacy unit is already a pseudonym and is
    hashed again to a 64-bit integer (a collision only merges two people's rows, which
    tightens truncation and keeps the bound).
    """

    frame: pl.DataFrame
    schema: dict[str, pl.DataType]
    has_unit: bool
    rows: int


def prepare_frame(
    masked: pl.LazyFrame, contract: Contract, columns: Mapping[str, pl.Expr]
) -> PreparedFrame:
    """Compute ``columns`` (name -> row-wise expression on the masked frame, which may read
    columns declared before it) plus the hashed unit, and keep only those.

    Raises InputRejected if the file has more rows than ``contract.max_rows_per_file``.
    """
    lf = masked
    # one column at a time, in order: a column may read the ones declared before it
    for name, expr in columns.items():
        lf = lf.with_columns(expr.alias(name))
    names = list(columns)
    if contract.privacy_unit is not None:
        lf = lf.with_columns(pl.col(contract.privacy_unit).cast(pl.String).hash(seed=0).alias(UNIT))
        names.append(UNIT)
    try:
        frame = lf.select(names).collect()
    except (pl.exceptions.ColumnNotFoundError, pl.exceptions.InvalidOperationError) as exc:
        raise InputRejected(
            f"dataset '{contract.dataset}': the masked frame lacks a column or type the "
            f"contract's analyses need ({type(exc).__name__}); check the contract's columns"
        ) from None
    if frame.height > contract.max_rows_per_file:
        raise InputRejected(
            f"dataset '{contract.dataset}': the file has {frame.height} rows, more than "
            f"max_rows_per_file={contract.max_rows_per_file}; raise it in the contract (noise "
            "on float sums grows with it) or split the file"
        )
    return PreparedFrame(frame, dict(frame.schema), contract.privacy_unit is not None, frame.height)


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
        if atom_t in ("f64", "f32"):
            atom = dp.atom_domain(T=atom_t, nan=False)
        else:
            atom = dp.atom_domain(T=atom_t)
        series.append(dp.series_domain(name, atom))
    domain = dp.lazyframe_domain(series)
    return dp.with_margin(domain, dp.polars.Margin(by=[], max_length=max_length))


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
        needed = set(spec.by)
        for expr in (*spec.aggs, *spec.filters):
            needed.update(expr.meta.root_names())
        if self.prepared.has_unit:
            needed.add(UNIT)
        return tuple(c for c in self.prepared.schema if c in needed)

    def _schema(self, spec: QuerySpec) -> dict[str, pl.DataType]:
        return {c: self.prepared.schema[c] for c in self.columns(spec)}

    def _domain(self, spec: QuerySpec) -> Any:
        cols = self.columns(spec)
        if cols not in self._domains:
            self._domains[cols] = _input_domain(
                {c: self.prepared.schema[c] for c in cols}, self.contract.max_rows_per_file
            )
        return self._domains[cols]

    def plan(self, spec: QuerySpec) -> pl.LazyFrame:
        """The polars plan OpenDP analyses (built on an empty frame: no data in it)."""
        k = self.contract.max_rows_per_unit
        lf = pl.LazyFrame(schema=self._schema(spec))
        if self.prepared.has_unit:
            # truncate_per_group(k, keep="first"): at most k rows per person (the first k
            # in file order; twice as fast as a random k and just as private)
            lf = lf.filter(pl.int_range(pl.len()).over(UNIT) < k)
        for predicate in spec.filters:
            lf = lf.filter(predicate)
        if not spec.by:
            return lf.select(*spec.aggs)
        if self.prepared.has_unit and spec.keys is None:
            # truncate_num_groups: a person touches at most k groups (OpenDP reads `< k + 1`
            # as the bound k+1 and takes the minimum with the k rows kept above)
            ranks = pl.struct(*spec.by).rank("dense")
            lf = lf.filter(ranks.over(UNIT) < k + 1)
        grouped = lf.group_by(*spec.by).agg(*spec.aggs)
        if spec.keys is None:
            return grouped
        keys = spec.keys.lazy()
        return keys.join(grouped, how="left", on=list(spec.by), nulls_equal=True)

    def _make(
        self, spec: QuerySpec, plan: pl.LazyFrame, scale: float, threshold: int | None
    ) -> Any:
        dp = _dp()
        measure = dp.max_divergence()
        if spec.thresholded:
            measure = dp.approximate(measure)
        return dp.m.make_private_lazyframe(
            self._domain(spec),
            self._metric,
            measure,
            plan,
            global_scale=scale,
            threshold=threshold,
        )

    def _loss_of(self, meas: Any) -> PrivacyLoss:
        out = meas.map(self._d_in)
        if isinstance(out, tuple):
            return PrivacyLoss(float(out[0]), float(out[1]))
        return PrivacyLoss(float(out), 0.0)

    def _eps_at(self, spec: QuerySpec, plan: pl.LazyFrame, scale: float) -> float:
        meas = self._make(spec, plan, scale, _NO_THRESHOLD if spec.thresholded else None)
        out = meas.map(self._d_in)
        return float(out[0]) if isinstance(out, tuple) else float(out)

    def _solve_scale(self, spec: QuerySpec, plan: pl.LazyFrame, epsilon: float) -> float:
        # ε(scale) = c / scale for the Laplace mechanisms: one probe, then verify
        scale = self._eps_at(spec, plan, 1.0) / epsilon * (1 + _TOLERANCE)
        for _ in range(20):
            eps = self._eps_at(spec, plan, scale)
            if eps <= epsilon:
                return scale
            scale *= (eps / epsilon) * (1 + 1e-6)
        dp = _dp()
        return float(dp.binary_search(lambda s: self._eps_at(spec, plan, s) <= epsilon, T=float))

    def _solve_threshold(
        self, spec: QuerySpec, plan: pl.LazyFrame, scale: float, delta: float
    ) -> int:
        """The smallest threshold whose δ fits (bisection; δ falls as the threshold rises)."""
        dp = _dp()

        def ok(t: int) -> bool:
            try:
                return self._loss_of(self._make(spec, plan, scale, t)).delta <= delta
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
        return f"{self._fingerprint}|{spec.id}|eps={share.epsilon!r}|delta={share.delta!r}"

    def resolve(self, spec: QuerySpec, share: PrivacyLoss) -> Any:
        """A measurement for ``spec`` whose privacy map is within ``share`` (checked here)."""
        if spec.thresholded and share.delta <= 0:
            raise ContractError(
                f"dataset '{self.contract.dataset}': query '{spec.id}' groups by "
                f"{', '.join(spec.by)} without public keys, which needs δ > 0: declare keys in "
                "the contract or set budget.delta"
            )
        plan = self.plan(spec)
        key = self._key(spec, share)
        scale = self.cache.get(key)
        threshold_f = self.cache.get(key + "|threshold") if spec.thresholded else None
        if scale is not None and (threshold_f is not None or not spec.thresholded):
            meas = self._try(spec, plan, scale, threshold_f, share)
            if meas is not None:
                return meas
            log.warning(
                "cached noise scale for query %s fails its privacy check; recalibrating", spec.id
            )
        scale = self._solve_scale(spec, plan, share.epsilon)
        threshold: int | None = None
        if spec.thresholded:
            threshold = self._solve_threshold(spec, plan, scale, share.delta)
        meas = self._try(spec, plan, scale, threshold, share)
        if meas is None:
            raise PipelineError(
                f"dataset '{self.contract.dataset}': query '{spec.id}' could not be calibrated "
                f"within {share}; nothing was released"
            )
        self.cache.put(key, scale)
        if threshold is not None:
            self.cache.put(key + "|threshold", float(threshold))
        return meas

    def _try(
        self,
        spec: QuerySpec,
        plan: pl.LazyFrame,
        scale: float,
        threshold: float | int | None,
        share: PrivacyLoss,
    ) -> Any | None:
        thr = None if threshold is None else int(threshold)
        if not (math.isfinite(scale) and scale > 0):
            return None
        meas = self._make(spec, plan, scale, thr)
        if not self._loss_of(meas).fits_within(share):
            return None
        return meas

    # ----------------------------------------------------------------- release

    def release(self, spec: QuerySpec, share: PrivacyLoss) -> QueryResult:
        """Resolve (or reuse) the measurement for ``spec`` and invoke it once on the file."""
        meas = self.resolve(spec, share)
        return self.invoke(spec, meas)

    def invoke(self, spec: QuerySpec, meas: Any) -> QueryResult:
        """Run a resolved measurement on the prepared frame (each call draws fresh noise)."""
        dp = _dp()
        loss = self._loss_of(meas)
        summary = dp.summarize_polars_measurement(meas)
        steps = dict(spec.steps)
        noise = {
            str(row["column"]): Noise(
                str(row["distribution"]), float(row["scale"]), steps.get(str(row["column"]), 1.0)
            )
            for row in summary.iter_rows(named=True)
        }
        threshold = None
        if "threshold" in summary.columns:
            values = [t for t in summary["threshold"].to_list() if t is not None]
            threshold = int(values[0]) if values else None
        try:
            # select eagerly (zero-copy): OpenDP serializes the whole frame behind a lazy plan
            data = self.prepared.frame.select(self.columns(spec)).lazy()
            frame = meas(data).collect()
        except dp.OpenDPException as exc:
            raise PipelineError(
                f"dataset '{self.contract.dataset}': OpenDP refused query '{spec.id}' "
                f"({exc.variant}); nothing was released"
            ) from None
        if steps:
            frame = frame.with_columns(
                (pl.col(name).cast(pl.Float64) * step).alias(name)
                for name, step in steps.items()
                if name in frame.columns
            )
        return QueryResult(spec.id, frame, noise, loss, threshold)


# --------------------------------------------------------------------------- loss split


@dataclass
class LossPlan:
    """Splits a per-file loss evenly: ε over all queries, δ over thresholded ones."""

    total: PrivacyLoss
    specs: list[QuerySpec] = field(default_factory=list)

    def share(self, spec: QuerySpec) -> PrivacyLoss:
        n = max(len(self.specs), 1)
        n_thr = sum(1 for s in self.specs if s.thresholded)
        delta = self.total.delta / n_thr if spec.thresholded and n_thr else 0.0
        return PrivacyLoss(self.total.epsilon / n, delta)
