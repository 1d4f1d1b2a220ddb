"""Privacy budget: per dataset a gauge of ε spent versus its cap, the ledger as a table, and
a clear warning when the budget is exhausted."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import ALL, Dash, Input, Output, ctx, dcc, html
from dash.exceptions import PreventUpdate

from analytics.queries import BudgetStatus, LedgerEntry
from dashboard.charts import plot_text
from dashboard.components import (
    chart_card,
    error_panel,
    exhausted_warning,
    fmt_epsilon,
    fmt_time,
    graph,
    no_datasets,
    values_table,
)
from dashboard.exports import rows_to_csv, safe_filename
from dashboard.services import Services
from dashboard.theme import BLUE, GREEN, ORANGE, TEMPLATE_NAME, VERMILLION, install_template
from privacy.errors import PipelineError

PAGE = "budget"
LEDGER_ROWS = 50
LEDGER_COLUMNS = ["id", "created_at", "state", "epsilon", "delta", "run_id", "object_key",
                  "window_start", "committed_at", "cancelled_at"]


def layout(**_query: object) -> html.Div:
    return html.Div([
        html.H2("Privacy budget", className="mb-1"),
        html.P(
            "Each release spends privacy loss ε (and δ) from its dataset's budget. The ledger "
            "records every spend; a dataset whose budget is spent releases nothing more.",
            className="text-muted",
        ),
        dcc.Loading(html.Div(id=f"{PAGE}-content"), type="dot", delay_show=400),
        dcc.Download(id=f"{PAGE}-download"),
    ], id=f"{PAGE}-page")


def gauge(b: BudgetStatus) -> go.Figure:
    install_template()
    bar = VERMILLION if b.exhausted else (ORANGE if b.epsilon_spent >= 0.8 * b.epsilon_cap
                                          else GREEN)
    fig = go.Figure(go.Indicator(
        mode="gauge+number",
        value=b.epsilon_spent,
        number={"suffix": f" of {b.epsilon_cap:g}", "valueformat": ".3g"},
        title={"text": plot_text(f"ε spent ({b.policy})")},
        gauge={
            "axis": {"range": [0, b.epsilon_cap]},
            "bar": {"color": bar},
            "steps": [{"range": [b.epsilon_spent,
                                 min(b.epsilon_spent + b.epsilon_reserved, b.epsilon_cap)],
                       "color": "#dee2e6"}],
            "threshold": {"line": {"color": BLUE, "width": 3}, "value": b.epsilon_cap},
        },
    ))
    fig.update_layout(template=TEMPLATE_NAME, height=240, margin={"l": 24, "r": 24, "t": 48,
                                                                  "b": 8})
    return fig


def ledger_rows(entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "created_at": e.created_at.isoformat(),
            "state": e.state,
            "epsilon": e.epsilon,
            "delta": e.delta,
            "run_id": e.run_id,
            "object_key": e.key,
            "window_start": e.window_start.isoformat() if e.window_start else None,
            "committed_at": e.committed_at.isoformat() if e.committed_at else None,
            "cancelled_at": e.cancelled_at.isoformat() if e.cancelled_at else None,
        }
        for e in entries
    ]


def dataset_budget(b: BudgetStatus, entries: list[LedgerEntry]) -> html.Div:
    facts = [
        ("Cap", f"ε {fmt_epsilon(b.epsilon_cap)}, δ {b.delta_cap:g}"),
        ("Spent", f"ε {fmt_epsilon(b.epsilon_spent)}, δ {b.delta_spent:g}"),
        ("Reserved by running releases", f"ε {fmt_epsilon(b.epsilon_reserved)}"),
        ("Remaining", f"ε {fmt_epsilon(b.epsilon_remaining)}, δ {b.delta_remaining:g}"),
        ("Per release", f"ε {fmt_epsilon(b.epsilon_per_release)}"),
        ("Policy", b.policy + (f" (window: {b.window}, since {fmt_time(b.window_start)})"
                               if b.window else " (spends add up forever)")),
    ]
    table = values_table(
        ["When", "State", "ε", "δ", "Run", "Object"],
        [[fmt_time(e.created_at), e.state, fmt_epsilon(e.epsilon), f"{e.delta:g}", e.run_id,
          e.key] for e in entries],
    ) if entries else html.P("No ledger entries yet.", className="text-muted")
    body = [
        dbc.Row([
            dbc.Col(graph(gauge(b), {"type": f"{PAGE}-gauge", "name": b.dataset}), md=5),
            dbc.Col(html.Dl([item for k, v in facts
                             for item in (html.Dt(k, className="small text-muted"), html.Dd(v))]),
                    md=7),
        ]),
        html.H6(f"Ledger (latest {LEDGER_ROWS})", className="mt-2"),
        table,
    ]
    parts: list[Any] = [html.H4(b.dataset, className="mt-2")]
    if b.exhausted:
        parts.append(exhausted_warning(b.dataset, f"{PAGE}-{b.dataset}"))
    parts.append(chart_card(PAGE, b.dataset, "Budget and ledger", body))
    return html.Div(parts)


def render(services: Services) -> Any:
    try:
        store = services.store()
        names = [d.name for d in store.datasets()]
        if not names:
            return no_datasets(PAGE)
        return [dataset_budget(store.budget(n), store.ledger(n, limit=LEDGER_ROWS))
                for n in names]
    except PipelineError as exc:
        return error_panel(exc, PAGE)


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path="/budget", name="Privacy budget", title="Privacy budget",
                       order=2, layout=layout)

    @app.callback(Output(f"{PAGE}-content", "children"), Input("app-marker", "data"))
    def _render(_marker: str | None) -> Any:
        return render(services)

    @app.callback(
        Output(f"{PAGE}-download", "data"),
        Input({"type": f"{PAGE}-export", "name": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def _export(clicks: list[int | None]) -> dict[str, Any]:
        trigger = ctx.triggered_id
        if not trigger or not any(clicks) or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        dataset = str(trigger["name"])
        try:
            entries = services.store().ledger(dataset, limit=100_000)
        except PipelineError:
            raise PreventUpdate from None
        text = rows_to_csv(LEDGER_COLUMNS, ledger_rows(entries))
        return dcc.send_string(text, safe_filename(dataset, "ledger"), type="text/csv")
