"""The catalogue of analyses: a contract's analyses become OpenDP queries and then Releases.

    release_analyses(masked, contract, loss, cache=cache) -> ReleaseSet

Kinds (each documented where it is built below):

* ``summary``       rows, distinct people, sum and mean per measure;
* ``distribution``  histogram on public bins, quantiles at 0.125/0.25/0.5/0.75/0.875;
* ``comparison``    count, sum, mean of a measure per group; pairwise differences and ratios
  with simultaneous (Bonferroni) 95% intervals;
* ``trend``         count and means per calendar period (periods through OpenDP's threshold);
* ``correlation``   Pearson r from DP sums (post-processing, see ``analytics.correlations``);
* ``forecast``      a linear trend over released trend values (``analytics.forecasts``): no
  extra budget when a trend analysis on the same time column already releases its input.

The per-file loss is split evenly (ε over every OpenDP query, δ over the thresholded ones);
the ReleaseSet's loss is the sum of what the measurements' privacy maps report.

For repeated releases of one file (calibration tests, benchmarks), :func:`plan_analyses`
resolves every measurement once and :meth:`ReleasePlan.run` draws fresh noise each call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from analytics import insights
from analytics.correlations import pearson_from_sums
from analytics.forecasts import forecast_linear
from analytics.trends import is_integer_time, period_expr, period_label, period_noun, period_ordinal
from privacy.budget import PrivacyLoss
from privacy.contract import (
    Analysis,
    ComparisonAnalysis,
    Contract,
    CorrelationAnalysis,
    DistributionAnalysis,
    ForecastAnalysis,
    SummaryAnalysis,
    TrendAnalysis,
)
from privacy.dp_intervals import Estimate, difference, ratio
from privacy.errors import PipelineError
from privacy.release import (
    LEN,
    UNIT,
    CalibrationCache,
    LossPlan,
    QueryResult,
    QuerySpec,
    ReleaseEngine,
    dp_int_sum,
    dp_len,
    dp_n_unique,
    dp_quantile,
    fixed_point,
    prepare_frame,
)
from privacy.results import PublishedValue, Release, ReleaseSet

log = logging.getLogger(__name__)

#: quantile levels OpenDP calibrates well (others give useless scales)
GOOD_QUANTILES = (0.125, 0.25, 0.5, 0.75, 0.875)
QUANTILE_CANDIDATES = 201
MAX_PAIRS_GROUPS = 12
MISSING = "(missing)"

Results = dict[str, QueryResult]


def _x(m: str) -> str:
    return f"x:{m}"


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


@dataclass
class _Planned:
    kind: str
    name: str
    specs: list[QuerySpec]  # the queries this release pays for
    finish: Callable[[Results], tuple[list[PublishedValue], list[str]]]
    mechanism: str = "laplace"


@dataclass
class _Builder:
    contract: Contract
    schema: pl.Schema
    columns: dict[str, pl.Expr] = field(default_factory=dict)
    specs: dict[str, QuerySpec] = field(default_factory=dict)
    planned: list[_Planned] = field(default_factory=list)

    # ----------------------------------------------------------------- columns

    def measure(self, m: str) -> str:
        col = self.contract.columns[m]
        assert col.bounds is not None
        lo, hi = col.bounds
        fill = col.fill if col.fill is not None else lo
        expr = pl.col(m).cast(pl.Float64, strict=False)
        self.columns[_x(m)] = expr.fill_nan(None).fill_null(fill).clip(lo, hi)
        return _x(m)

    def isum(
        self, col: str, bounds: tuple[float, float], out: str, steps: list[tuple[str, float]]
    ) -> pl.Expr:
        """A DP sum of float column ``col`` (within ``bounds``) as a fixed-point integer sum."""
        expr, int_bounds, step = fixed_point(pl.col(col), bounds)
        self.columns[f"i:{col}"] = expr
        steps.append((out, step))
        return dp_int_sum(f"i:{col}", int_bounds, out)

    def bounds(self, m: str) -> tuple[float, float]:
        b = self.contract.columns[m].bounds
        assert b is not None
        return b

    def dimension(self, d: str) -> str:
        self.columns[f"d:{d}"] = pl.col(d).cast(pl.String).fill_null(MISSING)
        return f"d:{d}"

    def period(self, t: str) -> str:
        expr = period_expr(t, self.contract.columns[t], self.schema[t])
        # rows without a time fall into a "(missing)" period, dropped after release
        self.columns[f"p:{t}"] = expr.fill_null(MISSING)
        return f"p:{t}"

    def spec(self, spec: QuerySpec) -> QuerySpec:
        return self.specs.setdefault(spec.id, spec)

    def unique_name(self, name: str) -> str:
        taken = {p.name for p in self.planned}
        if name not in taken:
            return name
        i = 2
        while f"{name}#{i}" in taken:
            i += 1
        return f"{name}#{i}"

    # ----------------------------------------------------------------- summary

    def summary(self, a: SummaryAnalysis) -> None:
        measures = a.measures if a.measures is not None else self.contract.measures
        aggs = [dp_len("count")]
        steps: list[tuple[str, float]] = []
        if self.contract.privacy_unit is not None:
            aggs.append(dp_n_unique(UNIT, "units"))
        for m in measures:
            aggs.append(self.isum(self.measure(m), self.bounds(m), f"sum:{m}", steps))
        spec = self.spec(
            QuerySpec("summary:" + ",".join(measures), tuple(aggs), steps=tuple(steps))
        )

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[spec.id]
            row = res.frame.row(0, named=True)
            values: list[PublishedValue] = []
            count = _est(res, row, "count", (0.0, None))
            if count is not None:
                values.append(_pv("count", count))
            units = _est(res, row, "units", (0.0, None))
            if units is not None:
                values.append(_pv("units", units))
            for m in measures:
                s = _est(res, row, f"sum:{m}")
                if s is None:
                    continue
                values.append(_pv("sum", s, m))
                mean = ratio(s, count, clip=self.bounds(m)) if count is not None else None
                if mean is not None:
                    values.append(_pv("mean", mean, m))
            return values, insights.summary_insights(values)

        self.planned.append(_Planned("summary", self.unique_name("summary"), [spec], finish))

    # ----------------------------------------------------------------- distribution

    def distribution(self, a: DistributionAnalysis) -> None:
        m = a.measure
        lo, hi = self.bounds(m)
        edges = a.bins or [lo + (hi - lo) * i / 10 for i in range(11)]
        labels = [
            f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == len(edges) - 2 else ')'}"
            for i in range(len(edges) - 1)
        ]
        x = pl.col(self.measure(m))
        expr: Any = pl.lit(None, dtype=pl.String)
        for i in reversed(range(len(labels))):
            upper_ok = x <= edges[i + 1] if i == len(labels) - 1 else x < edges[i + 1]
            expr = pl.when((x >= edges[i]) & upper_ok).then(pl.lit(labels[i])).otherwise(expr)
        self.columns[f"b:{m}"] = expr
        hist = self.spec(
            QuerySpec(
                f"distribution:{m}:histogram:{','.join(f'{e:g}' for e in edges)}",
                (dp_len("count"),),
                by=(f"b:{m}",),
                keys=pl.DataFrame({f"b:{m}": labels}),
            )
        )
        alphas = [q for q in a.quantiles if any(abs(q - g) < 1e-12 for g in GOOD_QUANTILES)]
        if len(alphas) < len(a.quantiles):
            log.warning(
                "distribution of %s: quantiles other than %s are skipped (OpenDP gives them "
                "useless noise scales)",
                m,
                GOOD_QUANTILES,
            )
        cands = [lo + (hi - lo) * i / (QUANTILE_CANDIDATES - 1) for i in range(QUANTILE_CANDIDATES)]
        specs = [hist]
        quant: QuerySpec | None = None
        if alphas:
            quant = self.spec(
                QuerySpec(
                    f"distribution:{m}:quantiles:{','.join(map(str, alphas))}",
                    tuple(dp_quantile(_x(m), q, cands, f"q:{q}") for q in alphas),
                )
            )
            specs.append(quant)

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[hist.id]
            values: list[PublishedValue] = []
            for row in res.frame.iter_rows(named=True):
                est = _est(res, row, "count", (0.0, None))
                if est is not None:
                    values.append(_pv("histogram", est, m, {"bin": str(row[f"b:{m}"])}))
            order = {lab: i for i, lab in enumerate(labels)}
            values.sort(key=lambda v: order.get(v.group.get("bin", ""), 0))
            if quant is not None:
                qres = results[quant.id]
                qrow = qres.frame.row(0, named=True)
                for q in alphas:
                    noise = qres.noise.get(f"q:{q}")
                    values.append(
                        PublishedValue(
                            f"quantile_{q}",
                            float(qrow[f"q:{q}"]),
                            None,
                            None,
                            noise.scale if noise else None,
                            m,
                        )
                    )
            return values, insights.distribution_insights(m, values)

        mech = "laplace+exponential" if quant is not None else "laplace"
        self.planned.append(
            _Planned("distribution", self.unique_name(f"distribution:{m}"), specs, finish, mech)
        )

    # ----------------------------------------------------------------- comparison

    def comparison(self, a: ComparisonAnalysis) -> None:
        m, by = a.measure, a.by
        dcol = self.dimension(by)
        keys = self.contract.columns[by].keys
        steps: list[tuple[str, float]] = []
        spec = self.spec(
            QuerySpec(
                f"comparison:{m}:{by}",
                (dp_len("count"), self.isum(self.measure(m), self.bounds(m), "sum", steps)),
                by=(dcol,),
                keys=pl.DataFrame({dcol: keys}) if keys else None,
                steps=tuple(steps),
            )
        )
        bounds = self.bounds(m)

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[spec.id]
            values: list[PublishedValue] = []
            means: dict[str, Estimate] = {}
            for row in sorted(res.frame.iter_rows(named=True), key=lambda r: str(r[dcol])):
                g = {by: str(row[dcol])}
                count = _est(res, row, "count", (0.0, None))
                s = _est(res, row, "sum")
                if count is not None:
                    values.append(_pv("count", count, m, g))
                if s is not None:
                    values.append(_pv("sum", s, m, g))
                mean = ratio(s, count, clip=bounds) if s is not None and count is not None else None
                if mean is not None:
                    values.append(_pv("mean", mean, m, g))
                    means[g[by]] = mean
            names = sorted(means)
            pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]]
            if pairs and len(names) <= MAX_PAIRS_GROUPS:
                alpha = 0.05 / len(pairs)  # simultaneous 95% over all pairs (Bonferroni)
                for x, y in pairs:
                    g = {by: x, f"{by}_vs": y}
                    values.append(_pv("difference", difference(means[x], means[y]), m, g, alpha))
                    r = ratio(
                        Estimate(means[x].clipped, means[x].terms),
                        Estimate(means[y].clipped, means[y].terms),
                    )
                    if r is not None:
                        values.append(_pv("ratio", r, m, g, alpha))
                    r2 = ratio(
                        Estimate(means[y].clipped, means[y].terms),
                        Estimate(means[x].clipped, means[x].terms),
                    )
                    if r2 is not None:
                        values.append(_pv("ratio", r2, m, {by: y, f"{by}_vs": x}, alpha))
            return values, insights.comparison_insights(m, by, values)

        mech = "laplace" if keys else "laplace+threshold"
        self.planned.append(
            _Planned("comparison", self.unique_name(f"comparison:{m}:{by}"), [spec], finish, mech)
        )

    # ----------------------------------------------------------------- trend and forecast

    def _trend_spec(self, t: str, measures: list[str]) -> QuerySpec:
        pcol = self.period(t)
        aggs = [dp_len(LEN)]
        steps: list[tuple[str, float]] = []
        for m in measures:
            aggs.append(self.isum(self.measure(m), self.bounds(m), f"sum:{m}", steps))
        return self.spec(
            QuerySpec(
                f"trend:{t}:" + ",".join(measures), tuple(aggs), by=(pcol,), steps=tuple(steps)
            )
        )

    def _series(
        self, results: Results, spec: QuerySpec, t: str, measure: str | None
    ) -> list[tuple[int, str, Estimate]]:
        """(ordinal, label, estimate) per released period, in time order."""
        res = results[spec.id]
        col = self.contract.columns[t]
        integer = is_integer_time(col, self.schema[t])
        out = []
        for row in res.frame.iter_rows(named=True):
            label = row[f"p:{t}"]
            count = _est(res, row, LEN, (0.0, None))
            if label is None or label == MISSING or count is None:
                continue
            if measure is None:
                est: Estimate | None = count
            else:
                s = _est(res, row, f"sum:{measure}")
                est = ratio(s, count, clip=self.bounds(measure)) if s is not None else None
            if est is not None:
                out.append((period_ordinal(str(label), col.granularity, integer), str(label), est))
        out.sort(key=lambda p: p[0])
        return out

    def trend(self, a: TrendAnalysis) -> None:
        t = a.time
        spec = self._trend_spec(t, list(a.measures))
        col = self.contract.columns[t]
        noun = period_noun(col.granularity, is_integer_time(col, self.schema[t]))

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            values: list[PublishedValue] = []
            texts: list[str] = []
            counts = [
                _pv("count", e, None, {t: lab})
                for _, lab, e in self._series(results, spec, t, None)
            ]
            values += counts
            texts += insights.trend_insights(counts, f"rows per {noun}", noun)
            for m in a.measures:
                means = [
                    _pv("mean", e, m, {t: lab}) for _, lab, e in self._series(results, spec, t, m)
                ]
                values += means
                texts += insights.trend_insights(
                    means, f"average {insights.label(m)} per {noun}", noun
                )
            return values, texts

        self.planned.append(
            _Planned("trend", self.unique_name(f"trend:{t}"), [spec], finish, "laplace+threshold")
        )

    def forecast(self, a: ForecastAnalysis, trends: list[TrendAnalysis]) -> None:
        t, m = a.time, a.measure
        source = next(
            (tr for tr in trends if tr.time == t and (m is None or m in tr.measures)), None
        )
        if source is not None:
            spec = self._trend_spec(t, list(source.measures))
            pays: list[QuerySpec] = []
        else:
            spec = self._trend_spec(t, [m] if m else [])
            pays = [spec]
        col = self.contract.columns[t]
        integer = is_integer_time(col, self.schema[t])
        noun = period_noun(col.granularity, integer)
        what = f"rows per {noun}" if m is None else f"average {insights.label(m)}"

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            series = self._series(results, spec, t, m)
            values: list[PublishedValue] = []
            if pays:  # the input series was released for this forecast: publish it too
                values += [
                    _pv("count" if m is None else "mean", e, m, {t: lab}) for _, lab, e in series
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
        mech = "post-processing" if not pays else "laplace+threshold"
        self.planned.append(_Planned("forecast", name, pays, finish, mech))

    # ----------------------------------------------------------------- correlation

    def correlation(self, a: CorrelationAnalysis) -> None:
        ms = list(dict.fromkeys(a.measures))
        half = {}
        for m in ms:
            lo, hi = self.bounds(m)
            mid, h = (lo + hi) / 2, (hi - lo) / 2
            half[m] = h
            self.columns[f"c:{m}"] = pl.col(self.measure(m)) - mid
        aggs = [dp_len("n")]
        steps: list[tuple[str, float]] = []
        for m in ms:
            aggs.append(self.isum(f"c:{m}", (-half[m], half[m]), f"s:{m}", steps))
            self.columns[f"sq:{m}"] = pl.col(f"c:{m}") ** 2
            aggs.append(self.isum(f"sq:{m}", (0.0, half[m] ** 2), f"ss:{m}", steps))
        pairs = [(x, y) for i, x in enumerate(ms) for y in ms[i + 1 :]]
        for x, y in pairs:
            self.columns[f"xy:{x}*{y}"] = pl.col(f"c:{x}") * pl.col(f"c:{y}")
            b = half[x] * half[y]
            aggs.append(self.isum(f"xy:{x}*{y}", (-b, b), f"sxy:{x}*{y}", steps))
        spec = self.spec(QuerySpec("correlation:" + ",".join(ms), tuple(aggs), steps=tuple(steps)))

        def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
            res = results[spec.id]
            row = res.frame.row(0, named=True)
            values: list[PublishedValue] = []
            texts: list[str] = []
            n = _est(res, row, "n")
            for x, y in pairs:
                parts = [
                    n,
                    _est(res, row, f"s:{x}"),
                    _est(res, row, f"s:{y}"),
                    _est(res, row, f"ss:{x}"),
                    _est(res, row, f"ss:{y}"),
                    _est(res, row, f"sxy:{x}*{y}"),
                ]
                if any(p is None for p in parts):
                    continue
                r = pearson_from_sums(*parts)  # type: ignore[arg-type]
                if r is None:
                    texts.append(
                        f"Not enough variation to estimate a correlation between "
                        f"{insights.label(x)} and {insights.label(y)}."
                    )
                    continue
                pv = _pv("pearson_r", r, x, {"with": y})
                values.append(pv)
                texts += insights.correlation_insights(x, y, pv)
            return values, texts

        self.planned.append(
            _Planned("correlation", self.unique_name("correlation:" + ",".join(ms)), [spec], finish)
        )

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


# --------------------------------------------------------------------------- plan and run


@dataclass
class ReleasePlan:
    """Resolved measurements for one contract and one file; :meth:`run` releases them."""

    contract: Contract
    engine: ReleaseEngine
    specs: list[QuerySpec]
    measurements: dict[str, Any]
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
        releases = []
        for p in self.planned:
            values, texts = p.finish(results)
            loss: PrivacyLoss | None = None
            for s in p.specs:
                loss = results[s.id].loss if loss is None else loss + results[s.id].loss
            releases.append(Release(p.kind, p.name, p.mechanism, loss, values, texts))  # type: ignore[arg-type]
        return ReleaseSet(self.contract.dataset, self.contract.version, total, releases)


def plan_analyses(
    masked: pl.LazyFrame,
    contract: Contract,
    loss: PrivacyLoss,
    *,
    cache: CalibrationCache | None = None,
) -> ReleasePlan:
    """Prepare the file and resolve (or reuse from ``cache``) every measurement."""
    schema = masked.collect_schema()
    builder = _Builder(contract, schema)
    builder.add_all(list(contract.analyses))
    if not builder.specs:
        raise PipelineError(f"dataset '{contract.dataset}': the contract declares no analysis")
    prepared = prepare_frame(masked, contract, builder.columns)
    engine = ReleaseEngine(contract, prepared, cache)
    specs = list(builder.specs.values())
    split = LossPlan(loss, specs)
    measurements = {s.id: engine.resolve(s, split.share(s)) for s in specs}
    return ReleasePlan(contract, engine, specs, measurements, builder.planned, loss)


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
    return plan_analyses(masked, contract, loss, cache=cache).run()
