"""Dataset: KPI cards with intervals, comparisons with error bars and their sentences,
histograms, trends with the forecast band, a correlation heatmap, the quality shares next to
the numbers they shape (and its warnings at the top), and how to read them.

Every number comes from ``latest_values`` (the latest release of each analysis) and the
insights stored with those releases; the page computes nothing from data. Every number
carries a noise-impact badge (``dashboard.noise``). A viewer page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from analytics.queries import BudgetStatus, ReleaseInfo, ValueRow
from dashboard.auth import current_user
from dashboard.charts import (
    EXPORT_COLUMNS,
    bar_figure,
    by_series,
    correlation_figure,
    correlation_pair,
    export_rows,
    group_label,
    metric_label,
    trend_figure,
)
from dashboard.components import (
    chart_card,
    error_panel,
    exhausted_warning,
    fmt_epsilon,
    fmt_number,
    fmt_time,
    fmt_value_interval,
    footer,
    graph,
    impact_badge,
    kpi_card,
    message,
    values_table,
    with_badge,
)
from dashboard.disclosures import (
    BOUNDS,
    QUALITY,
    Disclosures,
    columns_of,
    kpi_notes,
    measure_note,
    quality_table,
    quality_warnings,
)
from dashboard.exports import rows_to_csv, safe_filename
from dashboard.noise import is_quantile
from dashboard.reading import how_to_read
from dashboard.services import Services
from dashboard.users import NOBODY, User
from privacy.errors import PipelineError

PAGE = "dataset"
RELEASES_FOR_INSIGHTS = 200
KIND_ORDER = ("summary", "comparison", "distribution", "trend", "forecast", "correlation",
              "quality")
#: how the producer's sentence begins when it publishes no quantile (too uncertain)
NO_QUANTILES = "Too few rows to quote quantiles"


def layout(name: str | None = None, **_query: object) -> html.Div:
    return html.Div([
        dcc.Store(id=f"{PAGE}-name", data=name),
        dcc.Loading(html.Div(id=f"{PAGE}-content"), type="dot", delay_show=400),
        dcc.Download(id=f"{PAGE}-download"),
        footer(PAGE),
    ], id=f"{PAGE}-page")


# ----------------------------------------------------------------------------- sections


def _interval_text(v: ValueRow) -> str:
    if v.lower is not None and v.upper is not None:
        return fmt_value_interval(v)
    if is_quantile(v.metric):
        return "no range published"
    if v.scale is not None:
        return f"noise scale {fmt_number(v.scale)} (no interval published)"
    return "computed from other released values"


def kpi_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                disc: Disclosures | None = None) -> dbc.Card:
    disc = disc or Disclosures()
    plain = [v for v in values if not v.group]
    notes = kpi_notes(plain, disc)
    cards = [
        dbc.Col(kpi_card(metric_label(v.metric, v.column), v, notes.get(i),
                         {"type": f"{PAGE}-disclosure",
                          "name": f"{release}:{v.metric}:{v.column or ''}"}),
                xs=6, md=4, lg=3, className="mb-3")
        for i, v in enumerate(plain)
    ]
    grouped = [v for v in values if v.group]
    body: list[Any] = [dbc.Row(cards, id=f"{PAGE}-kpis")]
    if grouped:
        body.append(_table(grouped))
    return chart_card(PAGE, release, "Summary", body, list(sentences))


def _table(values: Sequence[ValueRow]) -> dbc.Table:
    return values_table(
        ["Group", "Measure", "Value", "Interval"],
        [[group_label(v.group), metric_label(v.metric, v.column),
          with_badge(fmt_number(v.value), v), _interval_text(v)] for v in values],
    )


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


def comparison_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                       disc: Disclosures | None = None) -> dbc.Card:
    disc = disc or Disclosures()
    per_group = [v for v in values if v.metric not in ("difference", "ratio")]
    contrasts = [v for v in values if v.metric in ("difference", "ratio")]
    series = by_series(per_group)
    main_name, main = _main_series(series)
    body: list[Any] = []
    if main:
        body.append(graph(bar_figure(main, main_name),
                          {"type": f"{PAGE}-graph", "name": release}))
    body.append(_pivot(per_group))
    if contrasts:
        pairs = len({group_label(v.group) for v in contrasts})
        body.append(html.Details([
            html.Summary(f"Differences and ratios between groups ({pairs} pairs, "
                         "simultaneous 95% intervals)", className="mt-3 mb-2"),
            _pivot(contrasts, "simultaneous 95% interval"),
        ], id={"type": f"{PAGE}-contrasts", "name": release}))
    body += _notes(columns_of(values), disc, release)
    title = f"Comparison: {main_name}" if main_name else "Comparison"
    return chart_card(PAGE, release, title, body, list(sentences))


def _notes(columns: Sequence[str], disc: Disclosures, name: str) -> list[Any]:
    notes = [measure_note(PAGE, c, disc, f"{name}:{c}") for c in columns]
    return [n for n in notes if n is not None]


def _main_series(series: dict[str, list[ValueRow]]) -> tuple[str, list[ValueRow]]:
    for name, values in series.items():
        if values and values[0].metric == "mean":
            return name, values
    return next(iter(series.items()), ("", []))


def shown_quantiles(values: Sequence[ValueRow], sentences: Sequence[str]) -> list[ValueRow]:
    """Quantiles are shown with their rough range or not at all, and never next to a
    sentence saying they are too uncertain to quote."""
    if any(s.startswith(NO_QUANTILES) for s in sentences):
        return []
    return [v for v in values if is_quantile(v.metric)
            and v.lower is not None and v.upper is not None]


def distribution_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                         disc: Disclosures | None = None) -> dbc.Card:
    disc = disc or Disclosures()
    bins = [v for v in values if v.metric in ("histogram", "count") and v.group]
    quantiles = shown_quantiles(values, sentences)
    others = [v for v in values if v not in bins and not is_quantile(v.metric)] + quantiles
    column = next((v.column for v in values if v.column), None)
    body: list[Any] = []
    if bins:
        body.append(graph(bar_figure(bins, "Rows (noisy count)", colour_by_group=False),
                          {"type": f"{PAGE}-graph", "name": release}))
    if others:
        body.append(html.Ul([
            html.Li([f"{metric_label(v.metric, v.column)}: {fmt_number(v.value)}, "
                     f"{_interval_text(v)} ", impact_badge(v)])
            for v in others
        ], className="mt-2 mb-0 small", id={"type": f"{PAGE}-quantiles", "name": release}))
    body += _notes([column] if column else [], disc, release)
    title = f"Distribution of {column}" if column else "Distribution"
    return chart_card(PAGE, release, title, body, list(sentences))


def trend_sections(release: str, values: Sequence[ValueRow], forecasts: list[ValueRow],
                   forecast_release: str | None, sentences: Sequence[str],
                   forecast_sentences: Sequence[str] = (),
                   disc: Disclosures | None = None) -> list[dbc.Card]:
    """One chart per series; a matching forecast (taken out of ``forecasts``) is drawn on
    it, dashed, with its band and its sentences."""
    disc = disc or Disclosures()
    cards = []
    for i, (name, series) in enumerate(by_series(values).items()):
        column = series[0].column
        metric = series[0].metric
        overlay = [f for f in forecasts
                   if (f.column == column) and (column is not None or metric == "count")]
        for f in overlay:
            forecasts.remove(f)
        export = release if not overlay or not forecast_release or forecast_release == release \
            else f"{release}|{forecast_release}"
        fig = trend_figure({name: series}, overlay, y_title=name)
        said = list(sentences) if i == 0 else []
        if overlay and forecast_release != release:
            said += forecast_sentences
        body: list[Any] = [graph(fig, {"type": f"{PAGE}-graph", "name": f"{release}#{i}"})]
        body += _notes([column] if column else [], disc, f"{release}#{i}")
        cards.append(chart_card(PAGE, f"{export}#{i}", f"Trend: {name}", body, said))
    return cards


def correlation_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str],
                        disc: Disclosures | None = None) -> dbc.Card:
    disc = disc or Disclosures()
    fig = correlation_figure(values)
    measures = list(dict.fromkeys(m for v in values for m in correlation_pair(v)))
    return chart_card(
        PAGE, release, "Correlation (Pearson r)",
        [graph(fig, {"type": f"{PAGE}-graph", "name": release}),
         values_table(["Measures", "Pearson r", "Interval"],
                      [[" × ".join(correlation_pair(v)), with_badge(fmt_number(v.value), v),
                        _interval_text(v)] for v in values]),
         *_notes(measures, disc, release)],
        list(sentences),
    )


def quality_section(disc: Disclosures) -> dbc.Card | None:
    """Every share of the quality release with its 95% interval and badge, and what each
    share means. Its sentences lead the page (``quality_warnings``)."""
    if not disc.shares and not disc.bounds:
        return None
    name = f"{QUALITY}|{BOUNDS}" if disc.bounds else QUALITY
    return chart_card(PAGE, name, "Data quality: what shaped these numbers",
                      quality_table(PAGE, disc), list(disc.bounds_said))


def header(name: str, budget: BudgetStatus, values: Sequence[ValueRow]) -> html.Div:
    last = max((v.created_at for v in values), default=None)
    return html.Div([
        html.H2(name, className="mb-1", id=f"{PAGE}-title"),
        html.P(
            f"Latest release {fmt_time(last)} · privacy budget ε "
            f"{fmt_epsilon(budget.epsilon_spent)} spent of {fmt_epsilon(budget.epsilon_cap)} "
            f"({budget.policy})",
            className="text-muted",
        ),
    ])


@dataclass(frozen=True)
class _Loaded:
    values: list[ValueRow]
    budget: BudgetStatus
    recent: list[ReleaseInfo]
    sentences: dict[int, list[str]]
    disc: Disclosures


def _load(services: Services, name: str) -> _Loaded:
    store = services.store()
    values = store.latest_values(name)
    budget = store.budget(name)
    recent = store.releases(name, limit=RELEASES_FOR_INSIGHTS)
    sentences = {r.id: list(r.insights) for r in recent}
    rows = budget.max_rows_per_unit if budget.privacy_unit is not None else None
    return _Loaded(values, budget, recent, sentences, Disclosures.of(values, sentences, rows))


def render(services: Services, name: str | None, user: User = NOBODY) -> Any:
    if not name:
        return message("No dataset chosen", "This page shows one dataset.",
                       "pick one on the Overview page.", id=f"{PAGE}-empty")
    try:
        data = _load(services, name)
    except PipelineError as exc:
        return error_panel(exc, PAGE)
    parts: list[Any] = [header(name, data.budget, data.values)]
    if data.budget.exhausted:
        parts.append(exhausted_warning(name, PAGE))
    warnings = quality_warnings(PAGE, data.disc)
    if warnings is not None:
        parts.append(warnings)
    parts.append(how_to_read(PAGE, data.budget))
    if not data.values:
        todo = ("wait for its first file to be processed, or look at the Pipeline runs page "
                "for a rejected file." if user.is_operator else
                "wait for its first file to be processed; if nothing appears, ask an operator.")
        parts.append(message(
            "Nothing released yet",
            f"Dataset '{name}' is registered but has no published values.",
            todo,
            id=f"{PAGE}-empty",
        ))
        return parts
    parts.extend(sections(data.values, data.sentences, data.disc))
    parts.extend(wordless_sections(data.recent, data.values))
    return parts


def wordless_sections(recent: Sequence[Any], values: Sequence[ValueRow]) -> list[Any]:
    """Releases that published no number (the noise would have drowned it) still have a
    sentence saying why: show it rather than hide the analysis."""
    shown = {v.release_name for v in values}
    latest: dict[str, Any] = {}
    for r in recent:  # newest first
        latest.setdefault(r.name, r)
    out: list[Any] = []
    for r in sorted(latest.values(), key=lambda r: (_kind_rank(r.analysis), r.name)):
        if r.name in shown or not r.insights or r.analysis == QUALITY:
            continue
        title = f"{r.analysis.capitalize()}: {r.name.split(':', 1)[-1].replace(':', ' by ')}"
        note = html.P("No value was published for this analysis in the latest release.",
                      className="text-muted small mb-0")
        out.append(chart_card(PAGE, r.name, title, [note], list(r.insights)))
    return out


def sections(values: Sequence[ValueRow], sentences: dict[int, list[str]],
             disc: Disclosures | None = None) -> list[Any]:
    disc = disc or Disclosures()
    releases: dict[str, list[ValueRow]] = defaultdict(list)
    for v in values:
        releases[v.release_name].append(v)
    ordered = sorted(releases.items(), key=lambda kv: (_kind_rank(kv[1][0].analysis), kv[0]))
    # forecasts computed from a released trend are drawn on that trend's chart
    overlay = [v for _, vs in ordered if vs[0].analysis == "forecast"
               and all(x.metric == "forecast" for x in vs) for v in vs]
    overlay_release = next((v.release_name for v in overlay), None)
    out: list[Any] = []
    for release, vs in ordered:
        kind = vs[0].analysis
        said = sentences.get(vs[0].release_id, [])
        if kind == "summary":
            out.append(kpi_section(release, vs, said, disc))
        elif kind == "comparison":
            out.append(comparison_section(release, vs, said, disc))
        elif kind == "distribution":
            out.append(distribution_section(release, vs, said, disc))
        elif kind == "trend":
            overlay_said = sentences.get(overlay[0].release_id, []) if overlay else []
            out.extend(trend_sections(release, vs, overlay, overlay_release, said,
                                      overlay_said, disc))
        elif kind == "forecast" and any(v.metric != "forecast" for v in vs):
            # a forecast that released its own input series: its own chart
            points = [v for v in vs if v.metric == "forecast"]
            series = [v for v in vs if v.metric != "forecast"]
            out.extend(trend_sections(release, series, points, release, said, (), disc))
        elif kind == "correlation":
            out.append(correlation_section(release, vs, said, disc))
    if overlay and overlay_release:  # forecasts without a matching trend series
        said = sentences.get(overlay[0].release_id, [])
        out.append(chart_card(
            PAGE, overlay_release, "Forecast",
            [graph(trend_figure({}, overlay, y_title="forecast"),
                   {"type": f"{PAGE}-graph", "name": overlay_release})],
            said,
        ))
    quality = quality_section(disc)
    if quality is not None:
        out.append(quality)
    return out


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# ----------------------------------------------------------------------------- export


def export_values(data: _Loaded, names: set[str]) -> tuple[list[ValueRow],
                                                           list[tuple[ValueRow, str]]]:
    """A card's export: the values of its releases, the quality shares the card shows
    next to them, then its sentences and the quality warnings about its numbers."""
    own = [v for v in data.values if v.release_name in names]
    disc = data.disc
    if QUALITY in names:
        shares, warnings = list(disc.shares), list(disc.warnings)
        own = [v for v in own if v.analysis != QUALITY]
    else:
        columns = columns_of(own) + [m for v in own if v.analysis == "correlation"
                                     for m in correlation_pair(v)]
        counts = any(v.analysis == "summary" for v in own)
        shares = disc.relevant(columns, counts=counts)
        warnings = disc.warnings_for(columns, counts=counts)
    notes: list[tuple[ValueRow, str]] = []
    for v in dict((v.release_id, v) for v in own).values():
        notes += [(v, text) for text in data.sentences.get(v.release_id, [])]
    if shares or disc.shares:
        anchor = (shares or list(disc.shares))[0]
        notes += [(anchor, text) for text in warnings]
    return own + shares, notes


def export_csv(services: Services, dataset: str, key: str) -> dict[str, Any]:
    """The "Download CSV" of one chart: the published values behind it, neutralised."""
    names = set(key.split("#", 1)[0].split("|"))
    values, notes = export_values(_load(services, dataset), names)
    text = rows_to_csv(EXPORT_COLUMNS, export_rows(values, notes))
    return dcc.send_string(text, safe_filename(dataset, key.split("#", 1)[0].split("|")[0]),
                           type="text/csv")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path_template="/dataset/<name>", name="Dataset",
                       title="Dataset", order=1, layout=layout)

    @app.callback(
        Output(f"{PAGE}-content", "children"),
        Input("app-marker", "data"),
        State(f"{PAGE}-name", "data"),
    )
    def _render(_marker: str | None, name: str | None) -> Any:
        return render(services, name, current_user())

    @app.callback(
        Output(f"{PAGE}-download", "data"),
        Input({"type": f"{PAGE}-export", "name": ALL}, "n_clicks"),
        State(f"{PAGE}-name", "data"),
        prevent_initial_call=True,
    )
    def _export(clicks: list[int | None], name: str | None) -> dict[str, Any]:
        trigger = ctx.triggered_id
        if not name or not trigger or not any(clicks) or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        try:
            return export_csv(services, name, str(trigger["name"]))
        except PipelineError:
            raise PreventUpdate from None
