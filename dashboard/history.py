"""The dataset page's release selector and history panel.

A dataset that grows file by file has two kinds of release sets: dataset releases (over all
its files so far, or its latest snapshot) and each file's own release. The page shows the
latest dataset release by default; the selector picks an earlier one, or a file's. The
history panel shows each headline value (rows, people, each measure's mean: the summary
analysis's ungrouped values) over the dataset releases, or over the files' releases when
there are none, with its 95% interval, as a chart and a table. Everything here is a
published DP value or public bookkeeping (when, how many files).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import dcc, html

from analytics.store.rows import ReleaseSetInfo, ValueRow
from analytics.vocabulary import Kind, Metric
from dashboard.charts import metric_label, plot_text
from dashboard.components import fmt_interval, fmt_number
from dashboard.ids import DATASET, pattern
from dashboard.theme import OKABE_ITO, TEMPLATE_NAME, install_template

#: the selector's value for "the latest release of each analysis" (no release set chosen)
LATEST_EACH = "latest"
#: headline metrics, in the panel's order
HEADLINES = (Metric.COUNT, Metric.UNITS, Metric.MEAN)
#: release sets the history reads at most
HISTORY_SETS = 60


def chosen_set(sets: Sequence[ReleaseSetInfo], default: int | None,
               chosen: str | int | None) -> int | None:
    """The ledger id of the release set to show: the one chosen (if it still exists),
    else the default (the latest dataset release; None: each analysis's latest release)."""
    ids = {s.ledger_id for s in sets}
    if chosen == LATEST_EACH:
        return None
    if chosen is not None and str(chosen).isdigit() and int(chosen) in ids:
        return int(chosen)
    return default


def selector(sets: Sequence[ReleaseSetInfo], shown: int | None) -> html.Div | None:
    """A dropdown of the dataset's release sets, newest first (None: nothing to choose)."""
    if not sets:
        return None
    options: list[dict[str, Any]] = [
        {"label": s.label, "value": str(s.ledger_id)} for s in sets
    ]
    if not any(s.kind == "dataset" for s in sets):
        options.insert(0, {"label": "latest release of each analysis", "value": LATEST_EACH})
    return html.Div([
        html.Label("Release shown", htmlFor=DATASET.release_set, className="me-2 small"),
        dcc.Dropdown(id=DATASET.release_set, options=options, clearable=False,
                     value=LATEST_EACH if shown is None else str(shown),
                     style={"minWidth": "22rem"}),
    ], className="d-flex align-items-center mb-3", id=DATASET.release_selector)


def shown_label(sets: Sequence[ReleaseSetInfo], shown: int | None) -> str:
    for s in sets:
        if s.ledger_id == shown:
            return s.label
    return "latest release of each analysis"


def history_sets(sets: Sequence[ReleaseSetInfo]) -> list[ReleaseSetInfo]:
    """The release sets the history panel follows, oldest first (the latest
    ``HISTORY_SETS``)."""
    return sorted(sets, key=lambda s: s.ledger_id)[-HISTORY_SETS:]


def _headlines(values: Sequence[ValueRow]) -> dict[str, list[ValueRow]]:
    """Headline values by name ("Rows", "Mean of salary"), each in release-set order."""
    out: dict[str, list[ValueRow]] = defaultdict(list)
    for v in sorted(values, key=lambda v: (v.ledger_id or 0)):
        if v.analysis == Kind.SUMMARY and not v.group and v.metric in HEADLINES:
            out[metric_label(v.metric, v.column)].append(v)
    order = {m: i for i, m in enumerate(HEADLINES)}
    return dict(sorted(out.items(), key=lambda kv: (order[kv[1][0].metric], kv[0])))


#: the chart's series: release sets of each kind
_SERIES = (("dataset", "dataset releases (all files so far)", OKABE_ITO[0]),
           ("file", "single files", OKABE_ITO[1]))


def history_figure(name: str, points: Sequence[ValueRow],
                   sets: dict[int, ReleaseSetInfo]) -> go.Figure:
    """One headline value over the release sets, a line per kind, with 95% error bars."""
    install_template()
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE_NAME, title=plot_text(name), height=280,
                      margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    for kind, label, colour in _SERIES:
        pts = [v for v in points if v.ledger_id in sets and sets[v.ledger_id].kind == kind]
        if not pts:
            continue
        fig.add_scatter(
            x=[sets[v.ledger_id].created_at for v in pts if v.ledger_id is not None],
            y=[v.value for v in pts], mode="lines+markers", name=plot_text(label),
            line={"color": colour, "width": 2, "dash": None if kind == "dataset" else "dot"},
            error_y={"type": "data", "symmetric": False,
                     "array": [max((v.upper or v.value) - v.value, 0.0) for v in pts],
                     "arrayminus": [max(v.value - (v.lower or v.value), 0.0) for v in pts],
                     "thickness": 1.5, "width": 5},
            hovertemplate="%{y:.4g}<extra>" + plot_text(label) + "</extra>",
        )
    return fig


def history_panel(sets: Sequence[ReleaseSetInfo], values: Sequence[ValueRow]) -> dbc.Card | None:
    """Each headline value over the release sets, with its 95% interval: charts and a table
    (None: fewer than two release sets to compare)."""
    followed = history_sets(sets)
    if len(followed) < 2:
        return None
    by_id = {s.ledger_id: s for s in followed}
    heads = _headlines([v for v in values if v.ledger_id in by_id])
    if not heads:
        return None
    graphs = [
        dbc.Col(dcc.Graph(figure=history_figure(name, pts, by_id),
                          id=pattern(DATASET.graph, f"history:{name}"),
                          config={"displaylogo": False}), md=6)
        for name, pts in heads.items()
    ]
    cells: dict[tuple[int, str], str] = {
        (v.ledger_id or 0, name): f"{fmt_number(v.value)} ({fmt_interval(v.lower, v.upper)})"
        for name, pts in heads.items() for v in pts
    }
    head = html.Thead(html.Tr([html.Th("Release"), *[html.Th(n) for n in heads]]))
    body = html.Tbody([
        html.Tr([html.Td(s.label), *[html.Td(cells.get((s.ledger_id, n), "–")) for n in heads]])
        for s in reversed(followed)
    ])
    return dbc.Card([
        dbc.CardHeader(html.H5("History of the releases", className="mb-0")),
        dbc.CardBody([
            html.P("Each headline value as each release published it, with its 95% interval "
                   "(the noise added to that release). A dataset release reads every file so "
                   "far: its rows and people count them all, and its intervals narrow as "
                   "people accrue; a single file's release counts that file only.",
                   className="text-muted small"),
            dbc.Row(graphs),
            dbc.Table([head, body], bordered=False, hover=True, size="sm",
                      className="mt-2", id=DATASET.history_table),
        ]),
    ], className="mb-4", id=DATASET.history)
