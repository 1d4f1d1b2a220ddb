"""The catalogue of analyses: a contract's analyses become OpenDP queries and then Releases.

    release_analyses(masked, contract, loss, cache=cache) -> ReleaseSet

Kinds (each documented where it is built below):

* ``summary``       rows, distinct people, sum and mean per measure;
* ``distribution``  histogram on public bins, quantiles at 0.125/0.25/0.5/0.75/0.875
  (exponential mechanism: OpenDP gives no accuracy for them, so they carry no interval
  and their sentences say "roughly");
* ``comparison``    count, sum, mean of a measure per group; pairwise differences and ratios
  with simultaneous 95% intervals, family-wise (all of a comparison's differences and
  ratios cover together in 95% of releases; see ``_Builder.contrasts``);
* ``trend``         count and means per calendar period: the contract's public ``periods``
  range gives public keys (every period in it is released); without one, periods pass
  OpenDP's threshold (δ > 0);
* ``correlation``   Pearson r from DP sums (post-processing, see ``analytics.correlations``),
  withheld (an insight says why) when the noise swamps the measures' variances;
* ``forecast``      a linear trend over released trend values (``analytics.forecasts``): no
  extra budget when a trend analysis on the same time column already releases its input.

Queries are merged: every aggregate that shares a grouping (none, a dimension, a histogram's
bins, a time column's periods, or one row per person) goes into ONE OpenDP measurement, so
the file is read once per grouping and a shared aggregate (the row count, a measure's sum)
is released once and used by every analysis that needs it. Each paid analysis gets an equal
ε share, spread over the aggregates it uses (a shared aggregate gets the shares of all its
users, hence less noise); inside a measurement OpenDP's scales follow these weights.
δ goes evenly to the thresholded queries. A release's loss is its part of the
measurements' losses (their privacy maps); the parts add up to the set's loss.

Measures enter queries centred on the midpoint of their public bounds (a public shift), as
fixed-point integers: the noise of a sum of x − mid is sized by the half-width of the bounds,
not by the larger bound. Sums and means are then rebuilt by post-processing: Σx = Σ(x − mid)
+ mid·n, mean = mid + Σ(x − mid)/n.

Every interval covers the quantity as defined (the statistic of the rows OpenDP read, after
clamping and per-person truncation) with the stated probability under OpenDP's noise, and
says nothing about sampling (``privacy.dp_intervals``): exact quantiles of the noise for
counts, sums and their combinations, Fieller's method for means and shares (a mean whose
count's interval includes zero is withheld), simultaneous intervals for contrasts.

For repeated releases of one file (calibration tests, benchmarks), :func:`plan_analyses`
resolves every measurement once and :meth:`ReleasePlan.run` draws fresh noise each call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import polars as pl

from analytics import insights
from analytics.bounds import auto_measures, auto_share, estimate_bounds, with_bounds
from analytics.correlations import pearson_from_sums
from analytics.forecasts import forecast_linear
from analytics.trends import (
    is_integer_time,
    partial_periods,
    period_label,
    period_noun,
    period_ordinal_expr,
    public_periods,
)
from privacy.budget import PrivacyLoss
from privacy.contract import (
    Analysis,
    ComparisonAnalysis,
    Contract,
    CorrelationAnalysis,
    DistributionAnalysis,
    ForecastAnalysis,
    Missing,
    SummaryAnalysis,
    TrendAnalysis,
)
from privacy.dp_intervals import (
    Estimate,
    difference,
    linear,
    ratio,
    ratio_range,
    simultaneous_pairs,
)
from privacy.errors import PipelineError
from privacy.release import (
    EXCESS,
    OVER,
    SHARE,
    SPILL_ROWS,
    Agg,
    CalibrationCache,
    LossPlan,
    MemoryCalibrationCache,
    Noise,
    PreparedFrame,
    QueryResult,
    QuerySpec,
    ReleaseEngine,
    Resolved,
    count_agg,
    fixed_point,
    int_sum_agg,
    prepare_frame,
    quantile_agg,
)
from privacy.results import PublishedValue, Release, ReleaseSet

log = logging.getLogger(__name__)

#: quantile levels OpenDP calibrates well (others give useless scales)
GOOD_QUANTILES = (0.125, 0.25, 0.5, 0.75, 0.875)
QUANTILE_CANDIDATES = 201
MAX_PAIRS_GROUPS = 12
#: the share of each release's ε spent on disclosing what shaped the numbers (missing and
#: clamped shares, per-person truncation): the "quality" release
QUALITY_SHARE = 0.1
MISSING = "(missing)"
#: the period of rows without a time value when periods are private (dropped after release)
NO_PERIOD = -(2**62)
#: a period's mean is published only if its count's 95% lower bound exceeds this share of it
MEAN_COUNT_SHARE = 0.5
#: the chance, over all periods of a public range, that an empty period is taken for one
#: with rows (trimming a trend's span, choosing where a mean is published); and the
#: family-wise level of a comparison's simultaneous differences and ratios
FAMILY_ALPHA = 0.05
COUNT = "count"
ALL = "all"  # the ungrouped query
UNITS = "units"  # the one-row-per-person query

Results = dict[str, QueryResult]
Ref = tuple[str, str, float]  # (query id, aggregate name, weight)


def _pv(
    metric: str,
    est: Estimate,
    column: str | None = None,
    group: dict[str, str] | None = None,
    alpha: float = 0.05,
) -> PublishedValue:
    iv = est.interval(alpha)
    return PublishedValue(
        metric=metric,
        value=est.clipped,
        lower=iv[0] if iv else None,
        upper=iv[1] if iv else None,
        scale=est.scale,
        column=column,
        group=dict(group or {}),
    )


def _est(
    result: QueryResult,
    row: dict[str, Any],
    col: str,
    clip: tuple[float | None, float | None] = (None, None),
) -> Estimate | None:
    value = row.get(col)
    if value is None:
        return None
    return Estimate.of(float(value), result.noise.get(col), clip)


def _halfwidth(est: Estimate, sd: float = 0.0, alpha: float = 0.05) -> float | None:
    """The unclipped (1-alpha) half-width of ``est``'s noise, widened in quadrature by the
    (1-alpha) quantile of a normal variation of standard deviation ``sd``: for sentences
    that claim a finding about the data, not only about the noise (see
    ``_Builder.truncation_sd``). Published intervals never include it."""
    half = est.halfwidth(alpha)
    if half is None:
        return None
    return math.hypot(half, NormalDist().inv_cdf(1 - alpha / 2) * sd)


def _widened(pv: PublishedValue, sd: float, alpha: float = 0.05) -> PublishedValue:
    """``pv`` with its interval widened as in ``_halfwidth`` (for sentences only)."""
    if sd <= 0 or pv.lower is None or pv.upper is None:
        return pv
    add = NormalDist().inv_cdf(1 - alpha / 2) * sd
    lower = pv.value - math.hypot(pv.value - pv.lower, add)
    upper = pv.value + math.hypot(pv.upper - pv.value, add)
    return replace(pv, lower=lower, upper=upper)


def _value_at_rank(rank: float, edges: list[float], counts: list[float]) -> float:
    """The value below which ``rank`` of the histogram's rows lie (linear within a bin)."""
    total = sum(counts)
    rank = min(max(rank, 0.0), total)
    below = 0.0
    for i, c in enumerate(counts):
        if c > 0 and below + c >= rank:
            return edges[i] + (rank - below) / c * (edges[i + 1] - edges[i])
        below += c
    return edges[-1]


def _quantiles(
    m: str,
    found: list[tuple[float, float, Noise | None]],
    edges: list[float],
    counts: dict[int, Estimate],
    bounds: tuple[float, float],
    rows: float,
) -> list[PublishedValue]:
    """Quantiles with a rough range in the measure's units, or none at all.

    The exponential mechanism has no additive accuracy: it may pick a candidate up to
    ``quantile_rank_error`` rows away from the true rank. Where that exceeds
    ``QUANTILE_RANK_SHARE`` of the (noisy) rows, nothing is published. Otherwise each
    quantile's range is the span of values within that rank error (plus the noise of the
    histogram's cumulative counts) of its rank, read off the released histogram: post-
    processing of DP values only, a rough guide rather than a calibrated interval.
    """
    if rows <= 0 or not found:
        return []
    errors = [insights.quantile_rank_error(n.raw_scale if n else None, q) for q, _, n in found]
    if max(errors) > insights.QUANTILE_RANK_SHARE * rows:
        return []
    binned = [counts[i].clipped if i in counts else 0.0 for i in range(len(edges) - 1)]
    hist_noise = math.sqrt(sum((e.halfwidth() or 0.0) ** 2 for e in counts.values()))
    out = []
    for (q, value, _), err in zip(found, errors, strict=True):
        v = min(max(value, bounds[0]), bounds[1])
        spread = err + hist_noise
        low = _value_at_rank(q * rows - spread, edges, binned)
        high = _value_at_rank(q * rows + spread, edges, binned)
        out.append(PublishedValue(f"quantile_{q}", v, min(low, v), max(high, v), None, m))
    return out


def clearly_positive(est: Estimate, share: float = 0.0, alpha: float = 0.05) -> bool:
    """The (1-alpha) interval of ``est`` lies above ``share`` × its value (share 0: above
    zero, a count that surely has rows; share 0.5: a count precise enough to divide by)."""
    iv = est.interval(alpha)
    return iv is not None and iv[0] > max(share * est.value, 0.0)


@dataclass
class _Query:
    """A QuerySpec under construction: aggregates accumulate weight from their users."""

    id: str
    by: tuple[str, ...] = ()
    keys: pl.DataFrame | None = None
    per_unit: bool = False
    present: tuple[str, ...] = ()
    aggs: dict[str, Agg] = field(default_factory=dict)
    person_shares: list[str] = field(default_factory=list)


@dataclass
class _Planned:
    kind: str
    name: str
    refs: list[Ref]  # the aggregates this release pays for, with its weight on each
    finish: Callable[[Results], tuple[list[PublishedValue], list[str]]]
    mechanism: str = "laplace"


@dataclass
class _Builder:
    contract: Contract
    schema: pl.Schema
    columns: dict[str, pl.Expr] = field(default_factory=dict)
    queries: dict[str, _Query] = field(default_factory=dict)
    planned: list[_Planned] = field(default_factory=list)
    #: measures whose bounds were estimated under DP for this release (``bounds: auto``)
    estimated: frozenset[str] = frozenset()

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
            self.queries[qid] = _Query(qid, by, keys, per_unit, present)
        return qid

    def use(self, refs: list[Ref], qid: str, agg: Agg, weight: float = 1.0) -> None:
        """Add ``agg`` to query ``qid`` (or share the one already there) for one analysis."""
        refs.append((qid, agg.name, weight))
        self.queries[qid].aggs.setdefault(agg.name, agg)  # weights are summed in specs()

    def planned_add(self, p: _Planned, share: float = 1.0) -> None:
        """Register a release; its refs' weights are normalized to ``share`` (1: an equal ε
        share with every other analysis)."""
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
        if f"x:{m}" not in self.columns:
            col = self.contract.columns[m]
            lo, hi = self.bounds(m)
            expr = self._raw(m)
            if col.missing is Missing.FILL and col.fill is not None:
                expr = expr.fill_null(col.fill)
            self.columns[f"x:{m}"] = expr.clip(lo, hi) - self.mid(m)
        return f"x:{m}"

    def centred(self, m: str) -> tuple[str, tuple[int, int], float]:
        """The centred measure as a fixed-point integer column: (name, int bounds, step). A
        missing value is 0: it adds nothing to a centred sum, which is then divided by the
        count of present values."""
        lo, hi = self.bounds(m)
        h = (hi - lo) / 2
        expr, ibounds, step = fixed_point(pl.col(self.measure(m)), (-h, h))
        self.columns[f"i:{m}"] = expr.fill_null(0)
        return f"i:{m}", ibounds, step

    def csum(self, m: str, weight: float = 1.0) -> Agg:
        col, ibounds, step = self.centred(m)
        return int_sum_agg(col, ibounds, f"csum:{m}", step, weight)

    def indicator(self, m: str, what: str) -> str:
        """A 0/1 column of measure ``m``: ``present`` (the file has a value), ``below`` /
        ``above`` (a present value beyond the lower / upper bound: clamped to it)."""
        name = f"{what}:{m}"
        if name not in self.columns:
            lo, hi = self.bounds(m)
            raw = self._raw(m)
            flag = {"present": raw.is_not_null(), "below": raw < lo, "above": raw > hi}[what]
            self.columns[name] = flag.fill_null(False).cast(pl.Int64)
        return name

    def indicator_agg(self, m: str, what: str, weight: float = 1.0) -> Agg:
        return int_sum_agg(self.indicator(m, what), (0, 1), f"{what}:{m}", 1.0, weight)

    def use_n(self, refs: list[Ref], qid: str, m: str, weight: float = 1.0) -> None:
        """Add the count ``mean`` divides by: present values of ``m``, or the rows."""
        if self.may_miss(m):
            self.use(refs, qid, self.indicator_agg(m, "present"), weight)
        else:
            self.use(refs, qid, count_agg(COUNT), weight)

    def n_of(self, res: QueryResult, row: dict[str, Any], m: str) -> Estimate | None:
        """The released count of ``m``'s values in ``row``: present values, or the rows."""
        name = f"present:{m}" if self.may_miss(m) else COUNT
        return _est(res, row, name, (0.0, None))

    def dimension(self, d: str) -> tuple[str, pl.DataFrame | None, list[str] | None]:
        """The group column of dimension ``d``: with public keys, the key's index (rows
        with another value match no key and are not released); otherwise the value."""
        keys = self.contract.columns[d].keys
        name = f"d:{d}"
        if keys:
            index = pl.Series(range(len(keys)), dtype=pl.Int64)
            self.columns[name] = pl.col(d).cast(pl.String).replace_strict(keys, index, default=None)
            return name, pl.DataFrame({name: index}), list(keys)
        self.columns[name] = pl.col(d).cast(pl.String).fill_null(MISSING)
        return name, None, None

    def period(self, t: str) -> tuple[str, pl.DataFrame | None]:
        """The period ordinal column of time column ``t`` and its public keys (if any)."""
        col = self.contract.columns[t]
        name = f"p:{t}"
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
        cs = _est(res, row, f"csum:{m}")
        if cs is None or count is None:
            return None, None
        mid = self.mid(m)
        n = count.plain()
        total = linear([(1.0, cs), (mid, n)])
        mean = ratio(cs, n, self.bounds(m), offset=mid)
        if mean is not None and not mean.bounded():
            mean = None
        return total, mean

    # ----------------------------------------------------------------- summary

    def summary(self, a: SummaryAnalysis) -> None:
        measures = a.measures if a.measures is not None else self.contract.measures
        refs: list[Ref] = []
        q = self.query(ALL)
        self.use(refs, q, count_agg(COUNT))
        has_units = self.contract.privacy_unit is not None
        if has_units:
            self.use(refs, self.query(UNITS, per_unit=True), count_agg(UNITS))
        for m in measures:
            self.use(refs, q, self.csum(m))
            self.use_n(refs, q, m)

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[ALL]
            row = res.frame.row(0, named=True)
            values: list[PublishedValue] = []
            count = _est(res, row, COUNT, (0.0, None))
            if count is not None:
                values.append(_pv("count", count))
            if has_units:
                ures = results[UNITS]
                units = _est(ures, ures.frame.row(0, named=True), UNITS, (0.0, None))
                if units is not None:
                    values.append(_pv("units", units))
            for m in measures:
                n = self.n_of(res, row, m)
                if self.may_miss(m) and n is not None:
                    values.append(_pv("present", n, m))
                total, mean = self.sum_and_mean(res, row, m, n)
                if total is not None:
                    values.append(_pv("sum", total, m))
                if mean is not None:
                    values.append(_pv("mean", mean, m))
            return values, insights.summary_insights(values)

        self.planned_add(_Planned("summary", self.unique_name("summary"), refs, finish))

    # ----------------------------------------------------------------- distribution

    def distribution(self, a: DistributionAnalysis) -> None:
        m = a.measure
        lo, hi = self.bounds(m)
        mid = self.mid(m)
        edges = a.bins or [lo + (hi - lo) * i / 10 for i in range(11)]
        labels = [
            f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"
            for i in range(len(edges) - 1)
        ]
        x = pl.col(self.measure(m)) + mid  # null where the value is missing: in no bin
        expr: Any = pl.lit(None, dtype=pl.Int64)
        for i in reversed(range(len(labels))):
            upper_ok = x <= edges[i + 1] if i == len(labels) - 1 else x < edges[i + 1]
            expr = pl.when((x >= edges[i]) & upper_ok).then(pl.lit(i, pl.Int64)).otherwise(expr)
        bcol = f"b:{m}:{','.join(f'{e:g}' for e in edges)}"
        self.columns[bcol] = expr
        refs: list[Ref] = []
        hist = self.query(
            f"histogram:{m}:{','.join(f'{e:g}' for e in edges)}",
            by=(bcol,),
            keys=pl.DataFrame({bcol: pl.Series(range(len(labels)), dtype=pl.Int64)}),
        )
        alphas = [q for q in a.quantiles if any(abs(q - g) < 1e-12 for g in GOOD_QUANTILES)]
        if len(alphas) < len(a.quantiles):
            log.warning(
                "distribution of %s: quantiles other than %s are skipped (OpenDP gives them "
                "useless noise scales)",
                m,
                GOOD_QUANTILES,
            )
        # the histogram gets half of the analysis' ε, the (rough) quantiles share the rest
        self.use(refs, hist, count_agg(COUNT), max(len(alphas), 1))
        icol, (ilo, ihi), step = self.centred(m)
        # candidates in the fixed-point units of the centred column (published: c·step + mid)
        cands = sorted(
            {
                round(ilo + (ihi - ilo) * i / (QUANTILE_CANDIDATES - 1))
                for i in range(QUANTILE_CANDIDATES)
            }
        )
        # quantiles of the values that are there: rows without one are left out first
        qq = (
            self.query(f"present:{m}", present=(self.indicator(m, "present"),))
            if self.may_miss(m)
            else self.query(ALL)
        )
        for q in alphas:
            agg = quantile_agg(icol, q, cands, f"q:{m}:{q}", step=step, offset=mid)
            self.use(refs, qq, agg)

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[hist]
            values: list[PublishedValue] = []
            counts: dict[int, Estimate] = {}
            for row in res.frame.iter_rows(named=True):
                est = _est(res, row, COUNT, (0.0, None))
                if est is not None:
                    counts[int(row[bcol])] = est
                    values.append(_pv("histogram", est, m, {"bin": labels[int(row[bcol])]}))
            order = {lab: i for i, lab in enumerate(labels)}
            values.sort(key=lambda v: order.get(v.group.get("bin", ""), 0))
            rows = sum(e.clipped for e in counts.values())
            if alphas:
                qres = results[qq]
                qrow = qres.frame.row(0, named=True)
                found = [
                    (q, float(qrow[f"q:{m}:{q}"]), qres.noise.get(f"q:{m}:{q}")) for q in alphas
                ]
                values += _quantiles(m, found, edges, counts, (lo, hi), rows)
            return values, insights.distribution_insights(m, values, bool(alphas))

        mech = "laplace+exponential" if alphas else "laplace"
        name = self.unique_name(f"distribution:{m}")
        self.planned_add(_Planned("distribution", name, refs, finish, mech))

    # ----------------------------------------------------------------- comparison

    def comparison(self, a: ComparisonAnalysis) -> None:
        m, by = a.measure, a.by
        dcol, keys, names = self.dimension(by)
        q = self.query(f"by:{by}", by=(dcol,), keys=keys)
        refs: list[Ref] = []
        self.use(refs, q, count_agg(COUNT))
        self.use(refs, q, self.csum(m))
        self.use_n(refs, q, m)

        def key_of(value: Any) -> str:
            return names[int(value)] if names is not None else str(value)

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[q]
            values: list[PublishedValue] = []
            means: dict[str, Estimate] = {}
            counts: dict[str, Estimate] = {}
            sds: dict[str, float] = {}
            rows = sorted(res.frame.iter_rows(named=True), key=lambda r: key_of(r[dcol]))
            for row in rows:
                g = {by: key_of(row[dcol])}
                count = _est(res, row, COUNT, (0.0, None))
                n = self.n_of(res, row, m)
                total, mean = self.sum_and_mean(res, row, m, n)
                if count is not None:
                    values.append(_pv("count", count, m, g))
                if self.may_miss(m) and n is not None:
                    values.append(_pv("present", n, m, g))
                if total is not None:
                    values.append(_pv("sum", total, m, g))
                if mean is not None:
                    values.append(_pv("mean", mean, m, g))
                    means[g[by]] = mean
                    counts[g[by]] = n  # type: ignore[assignment]
                    sds[g[by]] = self.truncation_sd(n.clipped if n else 0.0, m)
            seen = [v for v in values if v.metric == "mean"]
            groups = sorted(means)
            pairs = [(x, y) for i, x in enumerate(groups) for y in groups[i + 1 :]]
            if pairs and len(groups) <= MAX_PAIRS_GROUPS:
                contrasts = self.contrasts(m, by, means, counts)
                alpha = FAMILY_ALPHA / len(pairs)  # (for the sentences' truncation allowance)
                for pv in contrasts:
                    x, y = pv.group[by], pv.group[f"{by}_vs"]
                    values.append(pv)
                    if pv.metric == "difference":
                        seen.append(_widened(pv, math.hypot(sds[x], sds[y]), alpha))
                    else:
                        den = means[y].clipped
                        spread = math.hypot(sds[x], pv.value * sds[y]) / den
                        seen.append(_widened(pv, spread, alpha))
            # sentences see the intervals widened for per-person truncation's variation
            return values, insights.comparison_insights(m, by, seen)

        mech = "laplace" if keys is not None else "laplace+threshold"
        name = self.unique_name(f"comparison:{m}:{by}")
        self.planned_add(_Planned("comparison", name, refs, finish, mech))

    def contrasts(
        self, m: str, by: str, means: dict[str, Estimate], counts: dict[str, Estimate]
    ) -> list[PublishedValue]:
        """Pairwise differences and ratios of the groups' means, with simultaneous intervals.

        Coverage is family-wise: with probability 95% (under the means' noise) EVERY
        difference and EVERY ratio interval of the comparison covers its value at once (so
        each single interval covers at least 95% of the time; the sentences, which pick the
        clear pairs among all, rely on exactly that). It is one event
        (``simultaneous_pairs``): the means' errors lie within u_x of a common shift bounded
        by w; the difference of groups x, y is then within ±(u_x + u_y) and the ratio within
        ``ratio_range``, so the ratio x/y and y/x are reciprocal. (Bonferroni over the pairs
        covered 98.5–99%: a noisy group's pairs miss together.) Only means whose count is
        precise enough to divide by (its 95% interval above ``MEAN_COUNT_SHARE`` of it, as for
        trends) take part: the error laws are the means' delta-method ones (the pivot
        Σ(x − mid) − c·n over the released n), accurate only then; a mean with a noisier
        count is published with its own exact Fieller interval but enters no contrast. A
        ratio is published only where its denominator stays positive on the event. Values
        are of the clipped means; intervals are intersected with what the bounds allow.
        Both kinds keep their names and shapes: ``difference`` with group {by: x, by_vs: y}
        (x < y), ``ratio`` both ways.
        """
        lo_b, hi_b = self.bounds(m)
        groups = sorted(x for x in means if clearly_positive(counts[x], MEAN_COUNT_SHARE))
        family = simultaneous_pairs([means[x] for x in groups], FAMILY_ALPHA)
        if family is None or len(groups) < 2:
            return []
        half, shift = dict(zip(groups, family[0], strict=True)), family[1]
        span = hi_b - lo_b
        out: list[PublishedValue] = []
        for i, x in enumerate(groups):
            for y in groups[i + 1 :]:
                g = {by: x, f"{by}_vs": y}
                d = difference(means[x], means[y])
                h = half[x] + half[y]
                lower, upper = max(d.value - h, -span), min(d.value + h, span)
                out.append(PublishedValue("difference", d.value, lower, upper, d.scale, m, g))
                r = ratio(means[x].plain(), means[y].plain())
                scale = r.scale if r is not None else None
                mx, my = means[x].clipped, means[y].clipped
                for a, b, ua, ub, gg in (
                    (mx, my, half[x], half[y], g),
                    (my, mx, half[y], half[x], {by: y, f"{by}_vs": x}),
                ):
                    rng = ratio_range(a, b, ua, ub, shift) if b > 0 else None
                    if rng is None:
                        continue
                    lower, upper = rng
                    if lo_b > 0:
                        lower, upper = max(lower, lo_b / hi_b), min(upper, hi_b / lo_b)
                    out.append(PublishedValue("ratio", a / b, lower, upper, scale, m, gg))
        return out

    # ----------------------------------------------------------------- trend and forecast

    def _trend_query(self, t: str, measures: list[str], refs: list[Ref], weight: float) -> str:
        pcol, keys = self.period(t)
        q = self.query(f"period:{t}", by=(pcol,), keys=keys)
        self.use(refs, q, count_agg(COUNT), weight)
        for m in measures:
            self.use(refs, q, self.csum(m), weight)
            self.use_n(refs, q, m, weight)
        return q

    def _series(
        self, results: Results, q: str, t: str, measure: str | None, trim: bool = False
    ) -> list[tuple[int, str, Estimate]]:
        """(ordinal, label, estimate) per released period, in time order.

        With public periods every period of the range has a count, but a mean is given only
        where its period's count surely has rows (at level 5% over all periods) and is
        precise (its 95% interval above half its value):
        elsewhere it would be noise over noise, and the delta-method interval of a ratio
        with so noisy a denominator would not be calibrated. ``trim`` (for insights and
        forecasts) keeps the span from the first to the last period whose count is clearly
        positive: periods of the range before or after the file's rows would read as a fall
        or rise that is only the range's edge; it also leaves out a first or last period the
        range covers only in part (``partial_periods``). All of it is post-processing of
        released values.
        """
        res = results[q]
        col = self.contract.columns[t]
        integer = is_integer_time(col, self.schema[t])
        public = col.periods is not None
        pcol = f"p:{t}"
        rows: list[tuple[int, Estimate, dict[str, Any]]] = []
        for row in res.frame.iter_rows(named=True):
            ordinal = row[pcol]
            count = _est(res, row, COUNT, (0.0, None))
            if ordinal is None or ordinal == NO_PERIOD or count is None:
                continue
            rows.append((int(ordinal), count, row))
        rows.sort(key=lambda r: r[0])
        # one test per period of the range: at level 5% over all of them (Bonferroni), an
        # empty period passes for a period with rows in under 2.5% of releases
        alpha = FAMILY_ALPHA / max(len(rows), 1)
        if public and trim:
            clear = [i for i, (_, c, _) in enumerate(rows) if clearly_positive(c, 0.0, alpha)]
            rows = rows[clear[0] : clear[-1] + 1] if clear else []
            partial = partial_periods(col)
            rows = [r for r in rows if r[0] not in partial]
        out = []
        for ordinal, count, row in rows:
            label = period_label(ordinal, col.granularity, integer)
            if measure is None:
                out.append((ordinal, label, count))
                continue
            n = self.n_of(res, row, measure)
            if n is None or (
                public
                and not (clearly_positive(n, 0.0, alpha) and clearly_positive(n, MEAN_COUNT_SHARE))
            ):
                continue
            _, mean = self.sum_and_mean(res, row, measure, n)
            if mean is not None:
                out.append((ordinal, label, mean))
        return out

    def _counts(self, results: Results, q: str, t: str, m: str | None) -> dict[int, float]:
        """Period ordinal -> the released count a value of ``m`` (None: rows) rests on."""
        res = results[q]
        out: dict[int, float] = {}
        for row in res.frame.iter_rows(named=True):
            n = self.n_of(res, row, m) if m is not None else _est(res, row, COUNT, (0.0, None))
            if row[f"p:{t}"] is not None and n is not None:
                out[int(row[f"p:{t}"])] = n.clipped
        return out

    def trend(self, a: TrendAnalysis) -> None:
        t = a.time
        refs: list[Ref] = []
        q = self._trend_query(t, list(a.measures), refs, 1.0)
        col = self.contract.columns[t]
        noun = period_noun(col.granularity, is_integer_time(col, self.schema[t]))

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            values: list[PublishedValue] = []
            texts: list[str] = []
            for m in (None, *a.measures):
                metric = "count" if m is None else "mean"
                series = self._series(results, q, t, m)
                values += [_pv(metric, e, m, {t: lab}) for _, lab, e in series]
                span = self._series(results, q, t, m, trim=True)
                counts = self._counts(results, q, t, m)
                what = (
                    f"rows per {noun}" if m is None else f"average {insights.label(m)} per {noun}"
                )
                points = [
                    (lab, e.clipped, _halfwidth(e, self.truncation_sd(counts[o], m)))
                    for o, lab, e in span
                ]
                texts += insights.trend_insights(points, what, noun)
            return values, texts

        mech = "laplace" if col.periods is not None else "laplace+threshold"
        self.planned_add(_Planned("trend", self.unique_name(f"trend:{t}"), refs, finish, mech))

    def forecast(self, a: ForecastAnalysis, trends: list[TrendAnalysis]) -> None:
        t, m = a.time, a.measure
        source = next(
            (tr for tr in trends if tr.time == t and (m is None or m in tr.measures)), None
        )
        refs: list[Ref] = []
        if source is not None:
            # the trend releases this series already: post-processing only, no refs paid
            q = self._trend_query(t, list(source.measures), [], 0.0)
        else:
            q = self._trend_query(t, [m] if m else [], refs, 1.0)
        pays = bool(refs)
        col = self.contract.columns[t]
        integer = is_integer_time(col, self.schema[t])
        noun = period_noun(col.granularity, integer)
        what = f"rows per {noun}" if m is None else f"average {insights.label(m)}"

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            series = self._series(results, q, t, m, trim=True)
            values: list[PublishedValue] = []
            if pays:  # the input series was released for this forecast: publish it too
                values += [
                    _pv("count" if m is None else "mean", e, m, {t: lab})
                    for _, lab, e in self._series(results, q, t, m)
                ]
            fc = forecast_linear([s[0] for s in series], [s[2].clipped for s in series], a.horizon)
            points: list[PublishedValue] = []
            if fc is not None:
                lo_clip = 0.0 if m is None else self.bounds(m)[0]
                hi_clip = None if m is None else self.bounds(m)[1]
                for p in fc[1]:
                    lo, hi, v = max(p.lower, lo_clip), p.upper, max(p.value, lo_clip)
                    if hi_clip is not None:
                        lo, hi, v = min(lo, hi_clip), min(hi, hi_clip), min(v, hi_clip)
                    points.append(
                        PublishedValue(
                            "forecast",
                            v,
                            lo,
                            hi,
                            None,
                            m,
                            {t: period_label(p.ordinal, col.granularity, integer)},
                        )
                    )
            values += points
            return values, insights.forecast_insights(what, points, len(series), noun)

        name = self.unique_name(f"forecast:{t}" + (f":{m}" if m else ""))
        if not pays:
            mech = "post-processing"
        else:
            mech = "laplace" if col.periods is not None else "laplace+threshold"
        self.planned_add(_Planned("forecast", name, refs, finish, mech))

    # ----------------------------------------------------------------- correlation

    def correlation(self, a: CorrelationAnalysis) -> None:
        """n, Σa, Σb (shared with the summary), Σa², Σb², Σab of the centred measures. The
        second moments drive r's noise, so they get three times the weight of the others.
        When a measure may be missing, the sums run over the rows where every measure of
        the analysis is present (a query of its own, filtered row by row)."""
        ms = list(dict.fromkeys(a.measures))
        refs: list[Ref] = []
        if any(self.may_miss(m) for m in ms):
            present = tuple(self.indicator(m, "present") for m in ms)
            q = self.query(f"complete:{','.join(ms)}", present=present)
        else:
            q = self.query(ALL)
        self.use(refs, q, count_agg(COUNT), 0.5)
        half: dict[str, float] = {}
        for m in ms:
            lo, hi = self.bounds(m)
            half[m] = (hi - lo) / 2
            self.use(refs, q, self.csum(m), 0.5)
            sq, ib, step = self._fixed(f"sq:{m}", pl.col(self.measure(m)) ** 2, (0.0, half[m] ** 2))
            self.use(refs, q, int_sum_agg(sq, ib, f"ss:{m}", step), 1.5)
        pairs = [(x, y) for i, x in enumerate(ms) for y in ms[i + 1 :]]
        for x, y in pairs:
            b = half[x] * half[y]
            prod = pl.col(self.measure(x)) * pl.col(self.measure(y))
            xy, ib, step = self._fixed(f"xy:{x}*{y}", prod, (-b, b))
            self.use(refs, q, int_sum_agg(xy, ib, f"sxy:{x}*{y}", step), 1.5)

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[q]
            row = res.frame.row(0, named=True)
            values: list[PublishedValue] = []
            texts: list[str] = []
            n = _est(res, row, COUNT)
            for x, y in pairs:
                parts = [
                    n,
                    _est(res, row, f"csum:{x}"),
                    _est(res, row, f"csum:{y}"),
                    _est(res, row, f"ss:{x}"),
                    _est(res, row, f"ss:{y}"),
                    _est(res, row, f"sxy:{x}*{y}"),
                ]
                if any(p is None for p in parts):
                    continue
                r = pearson_from_sums(*parts)  # type: ignore[arg-type]
                if r is None:
                    texts.append(
                        f"The correlation between {insights.label(x)} and "
                        f"{insights.label(y)} cannot be estimated at this privacy budget: the "
                        "noise hides their variation. Tighter public bounds for both, a larger "
                        "share of ε (fewer analyses, or a higher epsilon_per_release) or more "
                        "rows would make it estimable."
                    )
                    continue
                pv = _pv("pearson_r", r, x, {"with": y})
                values.append(pv)
                texts += insights.correlation_insights(x, y, pv)
            return values, texts

        name = self.unique_name("correlation:" + ",".join(ms))
        self.planned_add(_Planned("correlation", name, refs, finish))

    def _fixed(
        self, name: str, expr: pl.Expr, bounds: tuple[float, float]
    ) -> tuple[str, tuple[int, int], float]:
        as_int, ibounds, step = fixed_point(expr, bounds)
        self.columns[name] = as_int.fill_null(0)
        return name, ibounds, step

    # ----------------------------------------------------------------- data quality

    def quality(self, measures: list[str]) -> None:
        """What shaped the numbers, released under DP (a fixed ``QUALITY_SHARE`` of ε): per
        measure the share of values missing and the shares clamped at each bound, and with
        a privacy unit the share of people over ``max_rows_per_unit`` and (a lower bound)
        the share of rows the per-person truncation left out.

        With a privacy unit the shares are averaged over people (a person's share of rows
        missing, below or above a bound, each person counting once): sums of values in
        [0, 1] per person, so their noise does not grow with ``max_rows_per_unit``."""
        refs: list[Ref] = []
        k = self.contract.max_rows_per_unit
        has_units = self.contract.privacy_unit is not None
        wants_present = [
            m for m in measures if self.contract.columns[m].missing in (Missing.ALLOW, Missing.FILL)
        ]
        if has_units:
            q, total = self.query(UNITS, per_unit=True), UNITS
            self.use(refs, q, count_agg(UNITS))
            self.use(refs, q, int_sum_agg(OVER, (0, 1), "over"))
            self.use(refs, q, int_sum_agg(EXCESS, (0, k), "excess"))
            self.use(refs, self.query(ALL), count_agg(COUNT))
        else:
            q, total = self.query(ALL), COUNT
            self.use(refs, q, count_agg(COUNT))
        for m in measures:
            for what in ("present", "below", "above"):
                if what == "present" and m not in wants_present:
                    continue
                if has_units:
                    col = self.indicator(m, what)
                    if col not in self.queries[q].person_shares:
                        self.queries[q].person_shares.append(col)
                    self.use(refs, q, Agg(f"{what}:{m}", "sum", SHARE + col, (0.0, 1.0)))
                else:
                    self.use(refs, q, self.indicator_agg(m, what))
        if not measures and not has_units:
            return

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[q]
            row = res.frame.row(0, named=True)
            n = _est(res, row, total, (0.0, None))
            values: list[PublishedValue] = []
            if n is None:
                return values, []
            whole = Estimate(n.value, n.terms)
            for m in measures:
                if m not in self.estimated:  # public bounds, shown with what they clamped
                    lo, hi = self.bounds(m)
                    values.append(PublishedValue("clamp_lower", lo, None, None, None, m))
                    values.append(PublishedValue("clamp_upper", hi, None, None, None, m))
                present = _est(res, row, f"present:{m}")
                if present is not None:
                    miss = ratio(linear([(1.0, whole), (-1.0, present)]), whole, (0.0, 1.0))
                    if miss is not None:
                        values.append(_pv("missing_share", miss, m))
                base = present if present is not None else whole
                for what, metric in (("below", "clamped_low_share"), ("above", "clamped_high_share")):
                    beyond = _est(res, row, f"{what}:{m}")
                    share = ratio(beyond, base, (0.0, 1.0)) if beyond is not None else None
                    if share is not None:
                        values.append(_pv(metric, share, m))
            if has_units:
                over, excess = _est(res, row, "over"), _est(res, row, "excess")
                share = ratio(over, whole, (0.0, 1.0)) if over is not None else None
                if share is not None:
                    values.append(_pv("over_bound_share", share))
                all_res = results[ALL]
                rows = _est(all_res, all_res.frame.row(0, named=True), COUNT)
                if excess is not None and rows is not None:
                    kept_and_left = linear([(1.0, rows), (1.0, excess)])
                    share = ratio(excess, kept_and_left, (0.0, 1.0))
                    if share is not None:
                        values.append(_pv("truncated_share", share))
            return values, insights.quality_insights(values, self.contract, self.estimated)

        paid = sum(1 for p in self.planned if p.refs)
        share = QUALITY_SHARE / (1 - QUALITY_SHARE) * max(paid, 1)
        self.planned_add(_Planned("quality", "quality", refs, finish), share)

    def add_all(self, analyses: list[Analysis]) -> None:
        trends = [a for a in analyses if isinstance(a, TrendAnalysis)]
        for a in analyses:
            if isinstance(a, SummaryAnalysis):
                self.summary(a)
            elif isinstance(a, DistributionAnalysis):
                self.distribution(a)
            elif isinstance(a, ComparisonAnalysis):
                self.comparison(a)
            elif isinstance(a, TrendAnalysis):
                self.trend(a)
            elif isinstance(a, ForecastAnalysis):
                self.forecast(a, trends)
            elif isinstance(a, CorrelationAnalysis):
                self.correlation(a)
        self.quality([m for m in self.contract.measures if f"x:{m}" in self.columns])

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
    planned: list[_Planned]
    budget: PrivacyLoss

    def run(self) -> ReleaseSet:
        """Invoke every measurement once (fresh OpenDP noise) and post-process."""
        results = {s.id: self.engine.invoke(s, self.measurements[s.id]) for s in self.specs}
        total: PrivacyLoss | None = None
        for r in results.values():
            total = r.loss if total is None else total + r.loss
        if total is None:
            raise PipelineError(f"dataset '{self.contract.dataset}': no analysis to release")
        if not total.fits_within(self.budget):
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
            loss: PrivacyLoss | None = None
            if p.refs:
                eps = delta = 0.0
                for q, a, w in p.refs:
                    res, part = results[q], w / users[(q, a)]
                    eps += res.epsilon_of[a] * part
                    q_weight = sum(users[(q2, a2)] for (q2, a2) in users if q2 == q)
                    delta += res.loss.delta * w / q_weight
                loss = PrivacyLoss(eps, delta)
            releases.append(Release(p.kind, p.name, p.mechanism, loss, values, texts))  # type: ignore[arg-type]
        return ReleaseSet(self.contract.dataset, self.contract.version, total, releases)

    def close(self) -> None:
        self.engine.prepared.close()


def _prepare(
    masked: pl.LazyFrame,
    contract: Contract,
    spill_rows: int | None = SPILL_ROWS,
    estimated: frozenset[str] = frozenset(),
) -> tuple[_Builder, list[QuerySpec], set[str], PreparedFrame]:
    schema = masked.collect_schema()
    builder = _Builder(contract, schema, estimated=estimated)
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
        loss: PrivacyLoss,
        cache: CalibrationCache | None = None,
    ) -> None:
        self.masked, self.contract = masked, contract
        self.cache: CalibrationCache = cache if cache is not None else MemoryCalibrationCache()
        share = auto_share(contract)
        self.bounds_loss = PrivacyLoss(loss.epsilon * share, 0.0)
        self.rest = PrivacyLoss(loss.epsilon * (1 - share), loss.delta)
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
            self.contract.dataset, self.contract.version, est.loss + rs.loss,
            [est.release, *rs.releases],
        )  # fmt: skip

    def close(self) -> None:
        for plan in self._plans.values():
            if plan is not None:
                plan.close()


def plan_analyses(
    masked: pl.LazyFrame,
    contract: Contract,
    loss: PrivacyLoss,
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
        if keys is None or f"p:{t}" not in used:
            continue
        ordinal = pl.col(f"p:{t}")
        outside = (
            prepared.source([f"p:{t}"])
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
    loss: PrivacyLoss,
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
    loss: PrivacyLoss,
    *,
    cache: CalibrationCache | None = None,
) -> ReleasePlan | AutoBoundsPlan:
    """The plan for one file: :class:`AutoBoundsPlan` when a measure has ``bounds: auto``,
    else :func:`plan_analyses`; ``run()`` draws fresh noise each call, ``close()`` cleans up."""
    if auto_measures(contract):
        return AutoBoundsPlan(masked, contract, loss, cache)
    return plan_analyses(masked, contract, loss, cache=cache)
