"""``forecast``: a linear trend over released trend values (post-processing: no extra ε
when a trend analysis on the same time column already releases its input)."""

from __future__ import annotations

from analytics import insights
from analytics.analyses.builder import Builder, Planned, Ref, Results
from analytics.analyses.trend import period_series, trend_query
from analytics.analyses.values import (
    published,
)
from analytics.forecasts import forecast_linear
from analytics.trends import is_integer_time, period_label, period_noun
from analytics.vocabulary import Kind, Metric
from privacy.contract import ForecastAnalysis, TrendAnalysis
from privacy.results import PublishedValue


def plan(b: Builder, a: ForecastAnalysis) -> None:
    trends = [x for x in b.contract.analyses if isinstance(x, TrendAnalysis)]
    t, m = a.time, a.measure
    source = next(
        (tr for tr in trends if tr.time == t and (m is None or m in tr.measures)), None
    )
    refs: list[Ref] = []
    if source is not None:
        # the trend releases this series already: post-processing only, no refs paid
        q = trend_query(b, t, list(source.measures), [], 0.0)
    else:
        q = trend_query(b, t, [m] if m else [], refs, 1.0)
    pays = bool(refs)
    col = b.contract.columns[t]
    integer = is_integer_time(col, b.schema[t])
    noun = period_noun(col.granularity, integer)
    what = f"rows per {noun}" if m is None else f"average {insights.label(m)}"

    def finish(results: Results) -> tuple[list[PublishedValue], list[str]]:
        series = period_series(b, results, q, t, m, trim=True)
        values: list[PublishedValue] = []
        if pays:  # the input series was released for this forecast: publish it too
            values += [
                published(Metric.COUNT if m is None else Metric.MEAN, e, m, {t: lab})
                for _, lab, e in period_series(b, results, q, t, m)
            ]
        fc = forecast_linear([s[0] for s in series], [s[2].clipped for s in series], a.horizon)
        points: list[PublishedValue] = []
        if fc is not None:
            lo_clip = 0.0 if m is None else b.bounds(m)[0]
            hi_clip = None if m is None else b.bounds(m)[1]
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

    name = b.unique_name(f"forecast:{t}" + (f":{m}" if m else ""))
    mech = "laplace" if col.periods is not None else "laplace+threshold"
    if not pays:
        mech = "post-processing"
    b.planned_add(Planned(Kind.FORECAST, name, refs, finish, mech))
