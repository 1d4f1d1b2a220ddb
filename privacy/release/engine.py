"""The release engine: builds one OpenDP measurement per query spec, calibrates its noise
scales to the spec's loss share (once, then cached), checks the privacy map before anything
runs, and invokes it on the prepared frame. See docs/architecture.md, "The DP engine".

>>> import polars as pl
>>> from privacy.budget import Loss, PrivacyLoss, ZCDPLoss, fits
>>> from privacy.contract import Contract
>>> from privacy.release import QuerySpec, count_agg, prepare_frame
>>> contract = Contract.model_validate({"dataset": "d", "rows_are_people": True,
...     "budget": {"epsilon_cap": 1}, "columns": {"x": {"role": "dimension"}}})
>>> engine = ReleaseEngine(contract, prepare_frame(pl.LazyFrame({"x": ["a"] * 50}), contract, {}))
>>> result = engine.release(QuerySpec("rows", (count_agg(),)), PrivacyLoss(0.5))
>>> result.loss.epsilon <= 0.5, result.frame.columns, result.noise["len"].distribution
(True, ['len'], 'Integer Laplace')
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from privacy.budget import Loss, PrivacyLoss, ZCDPLoss, fits
from privacy.contract import Contract
from privacy.errors import ContractError, PipelineError
from privacy.release._opendp import opendp
from privacy.release.calibration import CalibrationCache, MemoryCalibrationCache
from privacy.release.noise import Noise
from privacy.release.plans import query_plan
from privacy.release.prepared import UNIT, PreparedFrame
from privacy.release.queries import QueryResult, QuerySpec, Resolved

log = logging.getLogger("privacy.release")

_NO_THRESHOLD = 2**32 - 1
_TOLERANCE = 1e-9


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
    dp = opendp()
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


#: ε (ρ) at a given scale, relative to a Laplace (Gaussian) aggregate's, by OpenDP
#: distribution (a first guess only: the measurement's privacy map has the last word)
_EPS_WEIGHT = {"ExponentialMin": 2.0, "GumbelMin": 0.25}


class ReleaseEngine:
    """Builds, calibrates, verifies and runs OpenDP measurements for one contract and file."""

    def __init__(
        self,
        contract: Contract,
        prepared: PreparedFrame,
        cache: CalibrationCache | None = None,
    ) -> None:
        dp = opendp()
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
        #: zero-concentrated DP (Gaussian noise, ρ) or pure ε (Laplace noise)
        self.zcdp = contract.budget.accounting == "zcdp"

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
        return query_plan(
            spec,
            {c: self.prepared.schema[c] for c in self.columns(spec)},
            has_unit=self.prepared.has_unit,
            max_rows_per_unit=self.contract.max_rows_per_unit,
            scales=scales,
        )

    def _make(
        self,
        spec: QuerySpec,
        scales: Mapping[str, float] | None,
        threshold: int | None,
    ) -> Any:
        dp = opendp()
        measure = dp.zero_concentrated_divergence() if self.zcdp else dp.max_divergence()
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

    def _loss_of(self, meas: Any) -> Loss:
        out = meas.map(self._d_in)
        amount, delta = (float(out[0]), float(out[1])) if isinstance(out, tuple) else (float(out), 0.0)
        return ZCDPLoss(amount, delta) if self.zcdp else PrivacyLoss(amount, delta)

    def _eps_of(self, spec: QuerySpec, scales: Mapping[str, float] | None) -> float:
        """ε (ρ under zCDP) of ``spec`` at ``scales``."""
        meas = self._make(spec, scales, _NO_THRESHOLD if spec.thresholded else None)
        out = meas.map(self._d_in)
        return float(out[0]) if isinstance(out, tuple) else float(out)

    def _solve_scales(self, spec: QuerySpec, epsilon: float) -> dict[str, float]:
        """Explicit scales giving each aggregate ε ∝ its weight, all together ≤ ``epsilon``
        (under zCDP the same for ρ, which falls with the square of the scale)."""
        dp = opendp()
        power = 2.0 if self.zcdp else 1.0
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
            # this aggregate's ε at the probe's scale (ε ∝ 1/scale, ρ ∝ 1/scale²) and its
            # target, by weight
            at_probe = eps1 * rel.get(a.name, 1.0) / total_rel
            target = epsilon * a.weight / total_w
            scales[a.name] = unit_scale[a.name] * (at_probe / target) ** (1 / power) * (
                1 + _TOLERANCE
            )
        for _ in range(20):
            eps = self._eps_of(spec, scales)
            if eps <= epsilon:
                return scales
            factor = (eps / epsilon) ** (1 / power) * (1 + 1e-6)
            scales = {name: s * factor for name, s in scales.items()}
        raise PipelineError(
            f"dataset '{self.contract.dataset}': query '{spec.id}' could not be calibrated "
            f"within ε={epsilon:g}; nothing was released"
        )

    def _solve_threshold(self, spec: QuerySpec, scales: Mapping[str, float], delta: float) -> int:
        """The smallest threshold whose δ fits (bisection; δ falls as the threshold rises)."""
        dp = opendp()

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

    def _check_kind(self, share: Loss) -> None:
        if isinstance(share, ZCDPLoss) != self.zcdp:
            raise PipelineError(
                f"dataset '{self.contract.dataset}': a {type(share).__name__} share for a "
                f"contract under accounting '{self.contract.budget.accounting}'"
            )

    def _key(self, spec: QuerySpec, share: Loss) -> str:
        """A short cache key (stores keep keys to 255 characters): the contract's
        fingerprint and a digest of the query, its aggregates and weights, and the share."""
        amount = f"eps={share.amount!r}" if isinstance(share, PrivacyLoss) else f"rho={share.amount!r}"
        what = f"{spec.id}|{spec.digest()}|{amount}|delta={share.delta!r}"
        return f"{self._fingerprint}|{_short(what)}"

    def resolve(self, spec: QuerySpec, share: Loss) -> Resolved:
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
        self._check_kind(share)
        scales = self._solve_scales(spec, share.amount)
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
        share: Loss,
    ) -> Resolved | None:
        thr = None if threshold is None else int(threshold)
        if not all(math.isfinite(s) and s > 0 for s in scales.values()):
            return None
        meas = self._make(spec, scales, thr)
        loss = self._loss_of(meas)
        if not fits(loss, share):
            return None
        return Resolved(meas, scales, thr, loss)

    # ----------------------------------------------------------------- release

    def release(self, spec: QuerySpec, share: Loss) -> QueryResult:
        """Resolve (or reuse) the measurement for ``spec`` and invoke it once on the file."""
        return self.invoke(spec, self.resolve(spec, share))

    def invoke(self, spec: QuerySpec, resolved: Resolved) -> QueryResult:
        """Run a resolved measurement on the prepared frame (each call draws fresh noise)."""
        dp = opendp()
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
        eps = resolved.loss.amount
        epsilon_of = {a.name: eps * a.weight / total_w for a in spec.aggs}
        return QueryResult(spec.id, frame, noise, resolved.loss, resolved.threshold, epsilon_of)
