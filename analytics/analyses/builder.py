"""The planner: analyses register what they ask OpenDP for, queries are merged.

Every aggregate that shares a grouping (none, a dimension, a histogram's bins, a time
column's periods, or one row per person) goes into ONE OpenDP measurement, so the file is
read once per grouping and a shared aggregate (the row count, a measure's sum) is released
once and used by every analysis that needs it. Each paid analysis gets an equal ε share,
spread over the aggregates it uses (a shared aggregate gets the shares of all its users,
hence less noise); inside a measurement OpenDP's scales follow these weights.

Measures enter queries centred on the midpoint of their bounds, as fixed-point integers:
the noise of a sum of x − mid is sized by the half-width of the bounds. Sums and means are
rebuilt by post-processing: Σx = Σ(x − mid) + mid·n, mean = mid + Σ(x − mid)/n, where n
counts the values present.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analytics.analyses.names import Indicator, Name
from analytics.analyses.values import COUNT, estimate_of
from analytics.trends import period_ordinal_expr, public_periods
from privacy.contract import Analysis, Contract, Missing
from privacy.dp_intervals import Estimate, linear, ratio
from privacy.errors import PipelineError
from privacy.release import Agg, QueryResult, QuerySpec, count_agg, fixed_point, int_sum_agg
from privacy.results import PublishedValue

MISSING = "(missing)"
#: the period of rows without a time value when periods are private (dropped after release)
NO_PERIOD = -(2**62)

Results = dict[str, QueryResult]
Ref = tuple[str, str, float]  # (query id, aggregate name, weight)


@dataclass
class Query:
    """A QuerySpec under construction: aggregates accumulate weight from their users."""

    id: str
    by: tuple[str, ...] = ()
    keys: pl.DataFrame | None = None
    per_unit: bool = False
    present: tuple[str, ...] = ()
    aggs: dict[str, Agg] = field(default_factory=dict)
    person_shares: list[str] = field(default_factory=list)


@dataclass
class Planned:
    kind: str
    name: str
    refs: list[Ref]  # the aggregates this release pays for, with its weight on each
    finish: Callable[[Results], tuple[list[PublishedValue], list[str]]]
    mechanism: str = "laplace"


@dataclass
class Builder:
    contract: Contract
    schema: pl.Schema
    columns: dict[str, pl.Expr] = field(default_factory=dict)
    queries: dict[str, Query] = field(default_factory=dict)
    planned: list[Planned] = field(default_factory=list)
    #: measures whose bounds were estimated under DP for this release (``bounds: auto``)
    estimated: frozenset[str] = frozenset()
    #: the contract's ε weight of the analysis being planned (``add_all``)
    _weight: float = 1.0

    # ----------------------------------------------------------------- queries

    def query(
        self,
        qid: str,
        by: tuple[str, ...] = (),
        keys: pl.DataFrame | None = None,
        per_unit: bool = False,
        present: tuple[str, ...] = (),
    ) -> str:
        if qid not in self.queries:
            self.queries[qid] = Query(qid, by, keys, per_unit, present)
        return qid

    def use(self, refs: list[Ref], qid: str, agg: Agg, weight: float = 1.0) -> None:
        """Add ``agg`` to query ``qid`` (or share the one already there) for one analysis."""
        refs.append((qid, agg.name, weight))
        self.queries[qid].aggs.setdefault(agg.name, agg)  # weights are summed in specs()

    def planned_add(self, p: Planned, share: float = 1.0) -> None:
        """Register a release; its refs' weights are normalized to ``share`` times the
        contract's ε weight of the analysis being planned (1 and 1: an equal ε share with
        every other analysis)."""
        share *= self._weight
        total = sum(w for _, _, w in p.refs)
        if total > 0:
            p.refs = [(q, a, share * w / total) for q, a, w in p.refs]
        self.planned.append(p)

    # ----------------------------------------------------------------- columns

    def bounds(self, m: str) -> tuple[float, float]:
        b = self.contract.columns[m].fixed_bounds
        if b is None:  # bounds: auto, not estimated yet (see analytics.bounds)
            raise PipelineError(f"measure '{m}': its bounds must be estimated before release")
        return b

    def mid(self, m: str) -> float:
        lo, hi = self.bounds(m)
        return (lo + hi) / 2

    def may_miss(self, m: str) -> bool:
        """Whether measure ``m`` can be missing in released rows (``missing: allow``): its
        sums and means then count its present values, not the rows."""
        return self.contract.columns[m].missing is Missing.ALLOW

    def _raw(self, m: str) -> pl.Expr:
        return pl.col(m).cast(pl.Float64, strict=False).fill_nan(None)

    def measure(self, m: str) -> str:
        """The measure clamped to its bounds, minus the bounds' midpoint: null where the
        value is missing (``missing: fill``: the public fill value instead)."""
        if Name.measure(m) not in self.columns:
            col = self.contract.columns[m]
            lo, hi = self.bounds(m)
            expr = self._raw(m)
            if col.missing is Missing.FILL and col.fill is not None:
                expr = expr.fill_null(col.fill)
            self.columns[Name.measure(m)] = expr.clip(lo, hi) - self.mid(m)
        return Name.measure(m)

    def centred(self, m: str) -> tuple[str, tuple[int, int], float]:
        """The centred measure as a fixed-point integer column: (name, int bounds, step). A
        missing value is 0: it adds nothing to a centred sum, which is then divided by the
        count of present values."""
        lo, hi = self.bounds(m)
        h = (hi - lo) / 2
        expr, ibounds, step = fixed_point(pl.col(self.measure(m)), (-h, h))
        self.columns[Name.centred(m)] = expr.fill_null(0)
        return Name.centred(m), ibounds, step

    def csum(self, m: str, weight: float = 1.0) -> Agg:
        col, ibounds, step = self.centred(m)
        return int_sum_agg(col, ibounds, Name.csum(m), step, weight)

    def indicator(self, m: str, what: Indicator) -> str:
        """A 0/1 column of measure ``m``: ``present`` (the file has a value), ``below`` /
        ``above`` (a present value beyond the lower / upper bound: clamped to it)."""
        name = Name.indicator(m, what)
        if name not in self.columns:
            lo, hi = self.bounds(m)
            raw = self._raw(m)
            flag = {"present": raw.is_not_null(), "below": raw < lo, "above": raw > hi}[what]
            self.columns[name] = flag.fill_null(False).cast(pl.Int64)
        return name

    def indicator_agg(self, m: str, what: Indicator, weight: float = 1.0) -> Agg:
        return int_sum_agg(self.indicator(m, what), (0, 1), Name.indicator(m, what), 1.0, weight)

    def use_n(self, refs: list[Ref], qid: str, m: str, weight: float = 1.0) -> None:
        """Add the count ``mean`` divides by: present values of ``m``, or the rows."""
        if self.may_miss(m):
            self.use(refs, qid, self.indicator_agg(m, "present"), weight)
        else:
            self.use(refs, qid, count_agg(COUNT), weight)

    def n_of(self, res: QueryResult, row: dict[str, Any], m: str) -> Estimate | None:
        """The released count of ``m``'s values in ``row``: present values, or the rows."""
        name = Name.indicator(m, "present") if self.may_miss(m) else COUNT
        return estimate_of(res, row, name, (0.0, None))

    def dimension(self, d: str) -> tuple[str, pl.DataFrame | None, list[str] | None]:
        """The group column of dimension ``d``: with public keys, the key's index (rows
        with another value match no key and are not released); otherwise the value."""
        keys = self.contract.columns[d].keys
        name = Name.dimension(d)
        if keys:
            index = pl.Series(range(len(keys)), dtype=pl.Int64)
            self.columns[name] = pl.col(d).cast(pl.String).replace_strict(keys, index, default=None)
            return name, pl.DataFrame({name: index}), list(keys)
        self.columns[name] = pl.col(d).cast(pl.String).fill_null(MISSING)
        return name, None, None

    def period(self, t: str) -> tuple[str, pl.DataFrame | None]:
        """The period ordinal column of time column ``t`` and its public keys (if any)."""
        col = self.contract.columns[t]
        name = Name.period(t)
        expr = period_ordinal_expr(t, col, self.schema[t])
        periods = public_periods(col)
        if periods is None:
            self.columns[name] = expr.fill_null(NO_PERIOD)
            return name, None
        self.columns[name] = expr
        return name, pl.DataFrame({name: pl.Series(periods, dtype=pl.Int64)})

    def truncation_sd(self, count: float, measure: str | None) -> float:
        """An upper bound on the standard deviation that random per-person truncation adds
        to a count (``measure`` None) or to a mean of ``measure`` over ``count`` rows.

        Each measurement keeps a random ``max_rows_per_unit`` of a person's rows, so a value
        varies between releases of one file even without noise. For a person's k kept rows
        drawn without replacement, the variance of how many fall in a group is at most its
        expected number, and of their centred sum at most (range)² times it; summed over
        people: Var(count) <= E[count] and Var(mean) <= range² / count. Without a privacy
        unit (rows are people) nothing is truncated and the bound is 0. It widens only the
        intervals the sentences rely on (``_with_sampling``), never a published interval.
        """
        if self.contract.privacy_unit is None:
            return 0.0
        n = max(count, 0.0)
        if measure is None:
            return math.sqrt(n)
        lo, hi = self.bounds(measure)
        return (hi - lo) / math.sqrt(max(n, 1.0))

    def unique_name(self, name: str) -> str:
        taken = {p.name for p in self.planned}
        if name not in taken:
            return name
        i = 2
        while f"{name}#{i}" in taken:
            i += 1
        return f"{name}#{i}"

    # ----------------------------------------------------------------- post-processing

    def sum_and_mean(
        self, res: QueryResult, row: dict[str, Any], m: str, count: Estimate | None
    ) -> tuple[Estimate | None, Estimate | None]:
        """Σx = Σ(x − mid) + mid·n and mean = mid + Σ(x − mid)/n, with their noise, where n
        (``count``) counts the present values (see ``n_of``).

        The mean's interval is Fieller's (``privacy.dp_intervals.Ratio``): exact for a noisy
        denominator, where the delta method under-covers for small groups. When the count's
        own 95% interval includes zero that interval is unbounded and the mean is withheld
        (None): noise over noise, with no honest interval to give it."""
        cs = estimate_of(res, row, Name.csum(m))
        if cs is None or count is None:
            return None, None
        mid = self.mid(m)
        n = count.plain()
        total = linear([(1.0, cs), (mid, n)])
        mean = ratio(cs, n, self.bounds(m), offset=mid)
        if mean is not None and not mean.bounded():
            mean = None
        return total, mean

    def _fixed(
        self, name: str, expr: pl.Expr, bounds: tuple[float, float]
    ) -> tuple[str, tuple[int, int], float]:
        as_int, ibounds, step = fixed_point(expr, bounds)
        self.columns[name] = as_int.fill_null(0)
        return name, ibounds, step

    def add_all(self, analyses: list[Analysis]) -> None:
        """Plan every analysis through the kind registered for it, then the quality one."""
        from analytics.analyses import quality
        from analytics.analyses.registry import planner

        for a in analyses:
            self._weight = float(getattr(a, "weight", 1.0))
            planner(a.kind)(self, a)
        self._weight = 1.0
        quality.plan(self, [m for m in self.contract.measures if Name.measure(m) in self.columns])

    def specs(self) -> list[QuerySpec]:
        """The queries with their aggregates' weights summed over the analyses using them;
        queries no paid analysis uses (a forecast's borrowed trend) are left out."""
        weight: dict[tuple[str, str], float] = {}
        for p in self.planned:
            for q, a, w in p.refs:
                weight[(q, a)] = weight.get((q, a), 0.0) + w
        out = []
        for query in self.queries.values():
            aggs = tuple(
                Agg(**{**agg.__dict__, "weight": weight[(query.id, name)]})
                for name, agg in query.aggs.items()
                if weight.get((query.id, name), 0.0) > 0
            )
            if aggs:
                out.append(
                    QuerySpec(
                        query.id,
                        aggs,
                        query.by,
                        query.keys,
                        query.per_unit,
                        query.present,
                        tuple(query.person_shares),
                    )
                )
        return out
