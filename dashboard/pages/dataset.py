"""Dataset: KPI cards with intervals, comparisons with error bars and their sentences,
histograms, trends with the forecast band, a correlation heatmap, and how to read them.

Every number comes from ``latest_values`` (the latest release of each analysis) and the
insights stored with those releases; the page computes nothing from data. A viewer page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from analytics.queries import BudgetStatus, ValueRow
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
    fmt_interval,
    fmt_number,
    fmt_time,
    footer,
    graph,
    kpi_card,
    message,
    values_table,
)
from dashboard.exports import rows_to_csv, safe_filename
from dashboard.services import Services
from dashboard.users import NOBODY, User
from privacy.errors import PipelineError

PAGE = "dataset"
RELEASES_FOR_INSIGHTS = 200
KIND_ORDER = ("summary", "comparison", "distribution", "trend", "forecast", "correlation")


def layout(name: str | None = None, **_query: object) -> html.Div:
    return html.Div([
        dcc.Store(id=f"{PAGE}-name", data=name),
        dcc.Loading(html.Div(id=f"{PAGE}-content"), type="dot", delay_show=400),
        dcc.Download(id=f"{PAGE}-download"),
        footer(PAGE),
    ], id=f"{PAGE}-page")


# ----------------------------------------------------------------------------- sections


def how_to_read() -> dbc.Accordion:
    return dbc.Accordion([
        dbc.AccordionItem([
            html.P(
                "Every number here is differentially private: calibrated random noise was "
                "added before it was published, so no single person's data can be inferred "
                "from it. The noise is why the numbers come with intervals."
            ),
            html.P(
                "95% interval (95% CI): the range that covers the true value in 95 of 100 "
                "releases. Read a value as \"somewhere in this range\". When two groups' "
                "intervals overlap a lot, or a difference's interval includes 0, the data "
                "do not show a clear difference, and the sentences say so."
            ),
            html.P(
                "ε (epsilon): how much privacy a release spends. Smaller ε means more noise "
                "and stronger protection. Each dataset has a total ε budget; once it is "
                "spent, nothing more is released."
            ),
            html.P(
                "Forecasts are computed from the published trend only (no extra privacy "
                "cost); their band shows the forecast's uncertainty, not a promise.",
                className="mb-0",
            ),
        ], title="How to read these numbers", item_id="how"),
    ], start_collapsed=True, id=f"{PAGE}-how-to-read", className="mb-4")


def _interval_text(v: ValueRow) -> str:
    if v.lower is not None and v.upper is not None:
        return fmt_interval(v.lower, v.upper)
    if v.scale is not None:
        return f"noisy, noise scale {fmt_number(v.scale)}"
    return "computed from other released values"


def kpi_section(release: str, values: Sequence[ValueRow], sentences: Sequence[str]) -> dbc.Card:
    cards = [
        dbc.Col(kpi_card(metric_label(v.metric, v.column), v.value, v.lower, v.upper),
                xs=6, md=4, lg=3, className="mb-3")
        for v in values
        if not v.group
    ]
    grouped = [v for v in values if v.group]
    body: list[Any] = [dbc.Row(cards, id=f"{PAGE}-kpis")]
    if grouped:
        body.append(_table(grouped))
    return chart_card(PAGE, release, "Summary", body, list(sentences))


def _table(values: Sequence[ValueRow]) -> dbc.Table:
    return values_table(
        ["Group", "Measure", "Value", "95% interval"],
        [[group_label(v.group), metric_label(v.metric, v.column), fmt_number(v.value),
          _interval_text(v)] for v in values],
    )


def _pivot(values: Sequence[ValueRow]) -> dbc.Table:
    """One row per group, one column per measure: "value (lower to upper)"."""
    measures: list[str] = []
    cells: dict[str, dict[str, str]] = {}
    for v in values:
        measure = metric_label(v.metric, v.column)
        if measure not in measures:
            measures.append(measure)
        ci = (f" ({fmt_number(v.lower)} to {fmt_number(v.upper)})"
              if v.lower is not None and v.upper is not None else "")
        cells.setdefault(group_label(v.group), {})[measure] = fmt_number(v.value) + ci
    return values_table(
        ["Group", *(f"{m} (95% interval)" for m in measures)],
        [[g, *(row.get(m, "–") for m in measures)] for g, row in cells.items()],
    )


def comparison_section(release: str, values: Sequence[ValueRow],
                       sentences: Sequence[str]) -> dbc.Card:
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
            html.Summary(f"Differences and ratios between groups ({pairs} pairs)",
                         className="mt-3 mb-2"),
            _pivot(contrasts),
        ], id={"type": f"{PAGE}-contrasts", "name": release}))
    title = f"Comparison: {main_name}" if main_name else "Comparison"
    return chart_card(PAGE, release, title, body, list(sentences))


def _main_series(series: dict[str, list[ValueRow]]) -> tuple[str, list[ValueRow]]:
    for name, values in series.items():
        if values and values[0].metric == "mean":
            return name, values
    return next(iter(series.items()), ("", []))


def distribution_section(release: str, values: Sequence[ValueRow],
                         sentences: Sequence[str]) -> dbc.Card:
    bins = [v for v in values if v.metric in ("histogram", "count") and v.group]
    others = [v for v in values if v not in bins]
    column = next((v.column for v in values if v.column), None)
    body: list[Any] = []
    if bins:
        body.append(graph(bar_figure(bins, "Rows (noisy count)", colour_by_group=False),
                          {"type": f"{PAGE}-graph", "name": release}))
    if others:
        body.append(html.Ul([
            html.Li(f"{metric_label(v.metric, v.column)}: {fmt_number(v.value)} "
                    f"({_interval_text(v)})")
            for v in others
        ], className="mt-2 mb-0 small"))
    title = f"Distribution of {column}" if column else "Distribution"
    return chart_card(PAGE, release, title, body, list(sentences))


def trend_sections(release: str, values: Sequence[ValueRow], forecasts: list[ValueRow],
                   forecast_release: str | None, sentences: Sequence[str],
                   forecast_sentences: Sequence[str] = ()) -> list[dbc.Card]:
    """One chart per series; a matching forecast (taken out of ``forecasts``) is drawn on
    it, dashed, with its band and its sentences."""
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
        cards.append(chart_card(
            PAGE, f"{export}#{i}", f"Trend: {name}",
            [graph(fig, {"type": f"{PAGE}-graph", "name": f"{release}#{i}"})],
            said,
        ))
    return cards


def correlation_section(release: str, values: Sequence[ValueRow],
                        sentences: Sequence[str]) -> dbc.Card:
    fig = correlation_figure(values)
    return chart_card(
        PAGE, release, "Correlation (Pearson r)",
        [graph(fig, {"type": f"{PAGE}-graph", "name": release}),
         values_table(["Measures", "Pearson r", "95% interval"],
                      [[" × ".join(correlation_pair(v)), fmt_number(v.value), _interval_text(v)]
                       for v in values])],
        list(sentences),
    )


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


def render(services: Services, name: str | None, user: User = NOBODY) -> Any:
    if not name:
        return message("No dataset chosen", "This page shows one dataset.",
                       "pick one on the Overview page.", id=f"{PAGE}-empty")
    try:
        store = services.store()
        values = store.latest_values(name)
        budget = store.budget(name)
        recent = store.releases(name, limit=RELEASES_FOR_INSIGHTS)
        sentences = {r.id: list(r.insights) for r in recent}
    except PipelineError as exc:
        return error_panel(exc, PAGE)
    parts: list[Any] = [header(name, budget, values)]
    if budget.exhausted:
        parts.append(exhausted_warning(name, PAGE))
    parts.append(how_to_read())
    if not values:
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
    parts.extend(sections(values, sentences))
    parts.extend(wordless_sections(recent, values))
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
        if r.name in shown or not r.insights:
            continue
        title = f"{r.analysis.capitalize()}: {r.name.split(':', 1)[-1].replace(':', ' by ')}"
        note = html.P("No value was published for this analysis in the latest release.",
                      className="text-muted small mb-0")
        out.append(chart_card(PAGE, r.name, title, [note], list(r.insights)))
    return out


def sections(values: Sequence[ValueRow], sentences: dict[int, list[str]]) -> list[Any]:
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
            out.append(kpi_section(release, vs, said))
        elif kind == "comparison":
            out.append(comparison_section(release, vs, said))
        elif kind == "distribution":
            out.append(distribution_section(release, vs, said))
        elif kind == "trend":
            overlay_said = sentences.get(overlay[0].release_id, []) if overlay else []
            out.extend(trend_sections(release, vs, overlay, overlay_release, said,
                                      overlay_said))
        elif kind == "forecast" and any(v.metric != "forecast" for v in vs):
            # a forecast that released its own input series: its own chart
            points = [v for v in vs if v.metric == "forecast"]
            series = [v for v in vs if v.metric != "forecast"]
            out.extend(trend_sections(release, series, points, release, said))
        elif kind == "correlation":
            out.append(correlation_section(release, vs, said))
    if overlay and overlay_release:  # forecasts without a matching trend series
        said = sentences.get(overlay[0].release_id, [])
        out.append(chart_card(
            PAGE, overlay_release, "Forecast",
            [graph(trend_figure({}, overlay, y_title="forecast"),
                   {"type": f"{PAGE}-graph", "name": overlay_release})],
            said,
        ))
    return out


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# ----------------------------------------------------------------------------- export


def export_csv(services: Services, dataset: str, key: str) -> dict[str, Any]:
    """The "Download CSV" of one chart: the published values behind it, neutralised."""
    names = set(key.split("#", 1)[0].split("|"))
    values = [v for v in services.store().latest_values(dataset) if v.release_name in names]
    text = rows_to_csv(EXPORT_COLUMNS, export_rows(values))
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
