"""Plan and run the releases of one file: prepare it, resolve every measurement once, and
draw fresh noise at each run (``ReleasePlan``, ``AutoBoundsPlan``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import polars as pl

from analytics.analyses.builder import Builder, Planned
from analytics.analyses.names import Name
from analytics.bounds import auto_measures, auto_share, estimate_bounds, with_bounds
from analytics.trends import public_periods
from privacy.budget import Loss, PrivacyLoss, compose, fits, like
from privacy.contract import Contract
from privacy.errors import PipelineError
from privacy.release import (
    SPILL_ROWS,
    CalibrationCache,
    LossPlan,
    MemoryCalibrationCache,
    PreparedFrame,
    QuerySpec,
    ReleaseEngine,
    Resolved,
    prepare_frame,
)
from privacy.results import Release, ReleaseSet

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- plan and run


@dataclass
class ReleasePlan:
    """Resolved measurements for one contract and one file; :meth:`run` releases them.

    Holds the prepared file (a temporary Parquet file for large files): :meth:`close`
    deletes it (garbage collection does too)."""

    contract: Contract
    engine: ReleaseEngine
    specs: list[QuerySpec]
    measurements: dict[str, Resolved]
    planned: list[Planned]
    budget: Loss

    def run(self) -> ReleaseSet:
        """Invoke every measurement once (fresh OpenDP noise) and post-process."""
        results = {s.id: self.engine.invoke(s, self.measurements[s.id]) for s in self.specs}
        total: Loss | None = None
        for r in results.values():
            total = compose(total, r.loss)
        if total is None:
            raise PipelineError(f"dataset '{self.contract.dataset}': no analysis to release")
        if not fits(total, self.budget):
            raise PipelineError(
                f"dataset '{self.contract.dataset}': the measurements' loss {total} exceeds "
                f"the per-file budget {self.budget}; nothing was released"
            )
        # every aggregate's ε (and its query's δ) is shared among its users by weight
        users: dict[tuple[str, str], float] = {}
        for p in self.planned:
            for q, a, w in p.refs:
                users[(q, a)] = users.get((q, a), 0.0) + w
        releases = []
        for p in self.planned:
            values, texts = p.finish(results)
            loss: Loss | None = None
            if p.refs:
                eps = delta = 0.0
                for q, a, w in p.refs:
                    res, part = results[q], w / users[(q, a)]
                    eps += res.epsilon_of[a] * part
                    q_weight = sum(users[(q2, a2)] for (q2, a2) in users if q2 == q)
                    delta += res.loss.delta * w / q_weight
                loss = like(total, eps, delta)
            mech = p.mechanism if isinstance(total, PrivacyLoss) else zcdp_mechanism(p.mechanism)
            releases.append(Release(p.kind, p.name, mech, loss, values, texts))  # type: ignore[arg-type]
        return ReleaseSet(self.contract.dataset, self.contract.version, total, releases)

    def close(self) -> None:
        self.engine.prepared.close()


def zcdp_mechanism(name: str) -> str:
    """A mechanism's name under zCDP, where OpenDP draws Gaussian noise for counts and sums
    and Gumbel noise to pick quantiles.

    >>> zcdp_mechanism("laplace+exponential")
    'gaussian+gumbel'
    """
    return name.replace("laplace", "gaussian").replace("exponential", "gumbel")


def _prepare(
    masked: pl.LazyFrame,
    contract: Contract,
    spill_rows: int | None = SPILL_ROWS,
    estimated: frozenset[str] = frozenset(),
) -> tuple[Builder, list[QuerySpec], set[str], PreparedFrame]:
    schema = masked.collect_schema()
    builder = Builder(contract, schema, estimated=estimated)
    builder.add_all(list(contract.analyses))
    specs = builder.specs()
    if not specs:
        raise PipelineError(f"dataset '{contract.dataset}': the contract declares no analysis")
    used = {
        c
        for s in specs
        for c in (*s.by, *s.present, *s.person_shares, *(a.column for a in s.aggs))
        if c is not None
    }
    prepared = prepare_frame(
        masked, contract, builder.columns, keep=sorted(used), spill_rows=spill_rows
    )
    return builder, specs, used, prepared


def opendp_input(release_input: pl.LazyFrame, contract: Contract) -> pl.DataFrame:
    """Exactly the rows OpenDP's measurements read for ``contract`` (before the per-person
    truncation inside each measurement), computed from a release input frame: for tests
    and audits of the rule that every step up to here is row-wise."""
    prepared = _prepare(release_input, contract, spill_rows=None)[3]
    assert prepared.frame is not None
    return prepared.frame


class AutoBoundsPlan:
    """Releases for a contract with ``bounds: auto`` measures (``analytics.bounds``): each
    :meth:`run` first estimates their bounds under DP with ``auto_share`` of the loss, then
    releases the analyses clamped to them with the rest. Bounds snap to a public grid, so few
    sets come up: the plan of each is resolved once and kept."""

    def __init__(
        self,
        masked: pl.LazyFrame,
        contract: Contract,
        loss: Loss,
        cache: CalibrationCache | None = None,
    ) -> None:
        self.masked, self.contract = masked, contract
        self.cache: CalibrationCache = cache if cache is not None else MemoryCalibrationCache()
        share = auto_share(contract)
        self.bounds_loss = loss.part(share, 0.0)
        self.rest = loss.part(1 - share, loss.delta)
        self._plans: dict[tuple[Any, ...], ReleasePlan | None] = {}

    def run(self) -> ReleaseSet:
        est = estimate_bounds(self.masked, self.contract, self.bounds_loss, self.cache)
        key = tuple(sorted(est.bounds.items()))
        if key not in self._plans:
            fixed = with_bounds(self.contract, est.bounds)
            self._plans[key] = None
            if fixed.analyses:
                estimated = frozenset(est.bounds)
                self._plans[key] = plan_analyses(
                    self.masked, fixed, self.rest, cache=self.cache, estimated=estimated
                )
        plan = self._plans[key]
        if plan is None:
            return ReleaseSet(self.contract.dataset, self.contract.version, est.loss, [est.release])
        rs = plan.run()
        return ReleaseSet(
            self.contract.dataset, self.contract.version, compose(est.loss, rs.loss),
            [est.release, *rs.releases],
        )  # fmt: skip

    def close(self) -> None:
        for plan in self._plans.values():
            if plan is not None:
                plan.close()


def plan_analyses(
    masked: pl.LazyFrame,
    contract: Contract,
    loss: Loss,
    *,
    cache: CalibrationCache | None = None,
    estimated: frozenset[str] = frozenset(),
) -> ReleasePlan:
    """Prepare the file and resolve (or reuse from ``cache``) every measurement. For
    ``bounds: auto`` measures use :func:`plan_release`, which estimates them first."""
    builder, specs, used, prepared = _prepare(masked, contract, estimated=estimated)
    try:
        engine = ReleaseEngine(contract, prepared, cache)
        split = LossPlan(loss, specs)
        measurements = {s.id: engine.resolve(s, split.share(s)) for s in specs}
        _log_outside_periods(contract, prepared, used)
    except BaseException:
        prepared.close()
        raise
    return ReleasePlan(contract, engine, specs, measurements, builder.planned, loss)


def _log_outside_periods(contract: Contract, prepared: PreparedFrame, used: set[str]) -> None:
    """Log (a count only) the rows no trend releases: outside a public period range, or
    without a time value."""
    for t, col in contract.columns.items():
        keys = public_periods(col)
        if keys is None or Name.period(t) not in used:
            continue
        ordinal = pl.col(Name.period(t))
        outside = (
            prepared.source([Name.period(t)])
            .select((ordinal.is_null() | ~ordinal.is_between(keys[0], keys[-1])).sum())
            .collect()
            .item()
        )
        if outside:
            log.info(
                "dataset %s: %d rows have no %s in the contract's periods range; trends "
                "do not release them",
                contract.dataset,
                outside,
                t,
            )


def release_analyses(
    masked: pl.LazyFrame,
    contract: Contract,
    loss: Loss,
    *,
    cache: CalibrationCache | None = None,
) -> ReleaseSet:
    """Release every analysis of ``contract`` on one masked file within ``loss``.

    Raises PipelineError subclasses (counts-only messages): InputRejected for a file larger
    than ``max_rows_per_file`` or lacking a column, ContractError when a query needs δ > 0.
    """
    plan = plan_release(masked, contract, loss, cache=cache)
    try:
        return plan.run()
    finally:
        plan.close()


def plan_release(
    masked: pl.LazyFrame,
    contract: Contract,
    loss: Loss,
    *,
    cache: CalibrationCache | None = None,
) -> ReleasePlan | AutoBoundsPlan:
    """The plan for one file: :class:`AutoBoundsPlan` when a measure has ``bounds: auto``,
    else :func:`plan_analyses`; ``run()`` draws fresh noise each call, ``close()`` cleans up."""
    if auto_measures(contract):
        return AutoBoundsPlan(masked, contract, loss, cache)
    return plan_analyses(masked, contract, loss, cache=cache)
