"""The dataset page's cards, one per release of the producer's analyses: KPI cards for the
summary, bars with error bars for comparisons and histograms, trend lines with the
forecast's band, the correlation heatmap, and the Data quality card; the quality shares sit
next to the numbers they shape.

Each card reads its values as ``analytics.vocabulary`` names them (metrics, release kinds,
group keys) and computes nothing from data; its "Download CSV" is named after its release.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from analytics.store.rows import ReleaseInfo, ValueRow
from analytics.vocabulary import Kind, Metric
from dashboard.charts import (
    bar_figure,
    by_series,
    correlation_figure,
    correlation_pair,
    group_label,
    metric_label,
    trend_figure,
)
from dashboard.components import (
    chart_card,
    fmt_number,
    fmt_value_interval,
    graph,
    impact_badge,
    kpi_card,
    values_table,
    with_badge,
)
from dashboard.disclosures import Disclosures, columns_of, kpi_notes, measure_note, quality_table
from dashboard.ids import DATASET, pattern
from dashboard.noise import CONTRASTS, is_quantile

#: the order of the cards, by release kind
KIND_ORDER = (Kind.SUMMARY, Kind.COMPARISON, Kind.DISTRIBUTION, Kind.TREND, Kind.FORECAST,
              Kind.CORRELATION, Kind.QUALITY)
#: how the producer's sentence begins when it publishes no quantile (too uncertain)
NO_QUANTILES = "Too few rows to quote quantiles"


def kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def _card(name: str, title: str, body: list[Any], sentences: Sequence[str] = ()) -> dbc.Card:
    return chart_card(DATASET, name, title, body, list(sentences))


def _graph(fig: Any, name: str) -> Any:
    return graph(fig, pattern(DATASET.graph, name))


def _notes(columns: Sequence[str | None], disc: Disclosures, name: str) -> list[Any]:
    notes = [measure_note(c, disc, f"{name}:{c}") for c in columns if c]
    return [n for n in notes if n is not None]


def _interval_text(v: ValueRow) -> str:
    if v.lower is not None and v.upper is not None:
        return fmt_value_interval(v)
    if v.scale is not None:
        return f"noise scale {fmt_number(v.scale)} (no interval published)"
    return "computed from other released values"


# ----------------------------------------------------------------------------- summary


def kpi_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                disc: Disclosures | None = None) -> dbc.Card:
    disc = disc or Disclosures()
    plain = [v for v in values if not v.group]
    notes = kpi_notes(plain, disc)
    cards = [
        dbc.Col(kpi_card(metric_label(v.metric, v.column), v, notes.get(i),
                         pattern(DATASET.disclosure, f"{release}:{v.metric}:{v.column or ''}")),
                xs=6, md=4, lg=3, className="mb-3")
        for i, v in enumerate(plain)
    ]
    grouped = [v for v in values if v.group]
    body: list[Any] = [dbc.Row(cards, id=DATASET.kpis)]
    if grouped:
        body.append(values_table(
            ["Group", "Measure", "Value", "Interval"],
            [[group_label(v.group), metric_label(v.metric, v.column),
              with_badge(fmt_number(v.value), v), _interval_text(v)] for v in grouped],
        ))
    return _card(release, "Summary", body, sentences)


# ----------------------------------------------------------------------------- comparison


def _pivot(values: Sequence[ValueRow], interval: str = "95% interval") -> dbc.Table:
    """One row per group, one column per measure: "value (lower to upper)" and its badge."""
    measures: list[str] = []
    cells: dict[str, dict[str, Any]] = {}
    for v in values:
        measure = metric_label(v.metric, v.column)
        if measure not in measures:
            measures.append(measure)
        ci = (f" ({fmt_number(v.lower)} to {fmt_number(v.upper)})"
              if v.lower is not None and v.upper is not None else "")
        cells.setdefault(group_label(v.group), {})[measure] = with_badge(
            fmt_number(v.value) + ci, v)
    return values_table(
        ["Group", *(f"{m} ({interval})" for m in measures)],
        [[g, *(row.get(m, "–") for m in measures)] for g, row in cells.items()],
    )


def _main_series(series: dict[str, list[ValueRow]]) -> tuple[str, list[ValueRow]]:
    for name, values in series.items():
        if values and values[0].metric == Metric.MEAN:
            return name, values
    return next(iter(series.items()), ("", []))


def comparison_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                       disc: Disclosures | None = None) -> dbc.Card:
    """The groups' means as bars, every per-group value in a table, and the simultaneous
    differences and ratios between groups folded away under it."""
    disc = disc or Disclosures()
    per_group = [v for v in values if v.metric not in CONTRASTS]
    contrasts = [v for v in values if v.metric in CONTRASTS]
    main_name, main = _main_series(by_series(per_group))
    body: list[Any] = []
    if main:
        body.append(_graph(bar_figure(main, main_name), release))
    body.append(_pivot(per_group))
    if contrasts:
        pairs = len({group_label(v.group) for v in contrasts})
        body.append(html.Details([
            html.Summary(f"Differences and ratios between groups ({pairs} pairs, "
                         "simultaneous 95% intervals)", className="mt-3 mb-2"),
            _pivot(contrasts, "simultaneous 95% interval"),
        ], id=pattern(DATASET.contrasts, release)))
    body += _notes(columns_of(values), disc, release)
    title = f"Comparison: {main_name}" if main_name else "Comparison"
    return _card(release, title, body, sentences)


# ----------------------------------------------------------------------------- distribution


def shown_quantiles(values: Sequence[ValueRow], sentences: Sequence[str]) -> list[ValueRow]:
    """Quantiles are shown with their rough range or not at all, and never next to a
    sentence saying they are too uncertain to quote."""
    if any(s.startswith(NO_QUANTILES) for s in sentences):
        return []
    return [v for v in values if is_quantile(v.metric)
            and v.lower is not None and v.upper is not None]


def distribution_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                         disc: Disclosures | None = None) -> dbc.Card:
    """The histogram (rows per ``{"bin": label}``) and the quantiles with their rough range."""
    disc = disc or Disclosures()
    bins = [v for v in values if v.metric == Metric.HISTOGRAM]
    quantiles = shown_quantiles(values, sentences)
    column = next((v.column for v in values if v.column), None)
    body: list[Any] = []
    if bins:
        body.append(_graph(bar_figure(bins, "Rows (noisy count)", colour_by_group=False),
                           release))
    if quantiles:
        body.append(html.Ul([
            html.Li([f"{metric_label(v.metric, v.column)}: {fmt_number(v.value)}, "
                     f"{_interval_text(v)} ", impact_badge(v)])
            for v in quantiles
        ], className="mt-2 mb-0 small", id=pattern(DATASET.quantiles, release)))
    body += _notes([column], disc, release)
    title = f"Distribution of {column}" if column else "Distribution"
    return _card(release, title, body, sentences)


# ----------------------------------------------------------------------------- trends


def trend_sections(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                   forecasts: list[ValueRow], said: dict[int, list[str]],
                   disc: Disclosures | None = None) -> list[dbc.Card]:
    """One chart per series of the trend (rows per period, a measure's mean per period); a
    forecast of the same series (taken out of ``forecasts``) is drawn on it, dashed, with
    its band, and its sentences (``said``, by release id) join the card's."""
    disc = disc or Disclosures()
    cards = []
    for i, (name, series) in enumerate(by_series(values).items()):
        column, metric = series[0].column, series[0].metric
        overlay = [f for f in forecasts
                   if f.column == column and (column is not None or metric == Metric.COUNT)]
        for f in overlay:
            forecasts.remove(f)
        texts = list(sentences) if i == 0 else []
        export = release
        other = next((f for f in overlay if f.release_name != release), None)
        if other is not None:  # a forecast release of its own: in the export and the text
            export = f"{release}|{other.release_name}"
            texts += said.get(other.release_id, [])
        body = [_graph(trend_figure({name: series}, overlay, y_title=name), f"{release}#{i}"),
                *_notes([column], disc, f"{release}#{i}")]
        cards.append(_card(f"{export}#{i}", f"Trend: {name}", body, texts))
    return cards


def forecast_sections(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                      disc: Disclosures) -> list[dbc.Card]:
    """A forecast that released its own input series: that series with the forecast on it."""
    points = [v for v in values if v.metric == Metric.FORECAST]
    series = [v for v in values if v.metric != Metric.FORECAST]
    return trend_sections(release, series, sentences, points, {}, disc)


def forecast_card(points: Sequence[ValueRow], said: dict[int, list[str]]) -> dbc.Card:
    """Forecast points no trend card took: a chart of their own."""
    release = points[0].release_name
    return _card(release, "Forecast",
                 [_graph(trend_figure({}, points, y_title="forecast"), release)],
                 said.get(points[0].release_id, []))


# ----------------------------------------------------------------------------- correlation


def correlation_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                        disc: Disclosures | None = None) -> dbc.Card:
    disc = disc or Disclosures()
    measures = list(dict.fromkeys(m for v in values for m in correlation_pair(v)))
    table = values_table(["Measures", "Pearson r", "Interval"],
                         [[" × ".join(correlation_pair(v)), with_badge(fmt_number(v.value), v),
                           _interval_text(v)] for v in values])
    body = [_graph(correlation_figure(values), release), table,
            *_notes(measures, disc, release)]
    return _card(release, "Correlation (Pearson r)", body, sentences)


# ----------------------------------------------------------------------------- quality


def quality_name(disc: Disclosures) -> str:
    """The Data quality card's name: its releases, for its "Download CSV"."""
    return f"{Kind.QUALITY}|{Kind.BOUNDS}" if disc.bounds else Kind.QUALITY


def quality_section(disc: Disclosures) -> dbc.Card | None:
    """Every share of the quality release with its 95% interval and badge, and what each
    share means. Its sentences lead the page (``disclosures.quality_warnings``)."""
    if not disc.shares and not disc.bounds:
        return None
    return _card(quality_name(disc), "Data quality: what shaped these numbers",
                 quality_table(disc), disc.bounds_said)


def wordless_sections(recent: Sequence[ReleaseInfo], values: Sequence[ValueRow]) -> list[Any]:
    """Releases that published no number (the noise would have drowned it) still have a
    sentence saying why: show it rather than hide the analysis."""
    shown = {v.release_name for v in values}
    latest: dict[str, ReleaseInfo] = {}
    for r in recent:  # newest first
        latest.setdefault(r.name, r)
    out: list[Any] = []
    for r in sorted(latest.values(), key=lambda r: (kind_rank(r.analysis), r.name)):
        if r.name in shown or not r.insights or r.analysis == Kind.QUALITY:
            continue
        title = f"{r.analysis.capitalize()}: {r.name.split(':', 1)[-1].replace(':', ' by ')}"
        note = html.P("No value was published for this analysis in the latest release.",
                      className="text-muted small mb-0")
        out.append(_card(r.name, title, [note], r.insights))
    return out


# ----------------------------------------------------------------------------- the page


def _post_processed(releases: list[list[ValueRow]]) -> list[ValueRow]:
    """Forecast points of forecasts that released no input series of their own: they are
    drawn on the chart of the trend they continue."""
    return [v for vs in releases if vs[0].analysis == Kind.FORECAST
            and all(x.metric == Metric.FORECAST for x in vs) for v in vs]


def sections(values: Sequence[ValueRow], sentences: dict[int, list[str]],
             disc: Disclosures | None = None) -> list[Any]:
    """Every card of the dataset page, in ``KIND_ORDER``, the Data quality card last."""
    disc = disc or Disclosures()
    releases: dict[str, list[ValueRow]] = defaultdict(list)
    for v in values:
        releases[v.release_name].append(v)
    ordered = sorted(releases.items(), key=lambda kv: (kind_rank(kv[1][0].analysis), kv[0]))
    pending = _post_processed([vs for _, vs in ordered])
    single = {Kind.SUMMARY: kpi_section, Kind.COMPARISON: comparison_section,
              Kind.DISTRIBUTION: distribution_section, Kind.CORRELATION: correlation_section}
    out: list[Any] = []
    for release, vs in ordered:
        kind, said = vs[0].analysis, sentences.get(vs[0].release_id, [])
        if kind in single:
            out.append(single[Kind(kind)](release, vs, said, disc))
        elif kind == Kind.TREND:
            out += trend_sections(release, vs, said, pending, sentences, disc)
        elif kind == Kind.FORECAST and any(v.metric != Metric.FORECAST for v in vs):
            out += forecast_sections(release, vs, said, disc)
    if pending:  # forecasts without a matching trend series
        out.append(forecast_card(pending, sentences))
    quality = quality_section(disc)
    return out if quality is None else [*out, quality]
