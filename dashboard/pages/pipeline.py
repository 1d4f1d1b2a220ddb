"""Pipeline runs: recent runs with their status, exact counts, counts-only reasons and a
link to the Prefect UI's flow run.

An operator page: its counts are exact operator information. The layout, the table's
callback and the CSV export each check the signed-in user's role; a viewer gets "not
available to your role" and no data (``dashboard/auth.py`` refuses the callbacks too).
"""

from __future__ import annotations

import re
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html
from dash.exceptions import PreventUpdate

from analytics.store.rows import RunRow
from dashboard.auth import current_user
from dashboard.components import (
    chart_card,
    error_panel,
    fmt_epsilon,
    fmt_number,
    fmt_time,
    loading,
    message,
    not_available,
    operator_banner,
    page_div,
)
from dashboard.exports import rows_to_csv, safe_filename
from dashboard.ids import PIPELINE
from dashboard.pages import export_on_click, render_on_change
from dashboard.services import Services
from dashboard.users import User
from privacy.errors import PipelineError

RUNS = 100
UUID_RE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.IGNORECASE)
STATUS_COLOURS = {
    "completed": "success",
    "running": "info",
    "rejected": "warning",
    "budget_exhausted": "warning",
    "terms_changed": "danger",
    "duplicate": "secondary",
    "failed": "danger",
}
EXPORT_COLUMNS = ["run_id", "dataset", "object_key", "status", "started_at", "finished_at",
                  "rows_in", "rows_out", "rows_suppressed", "values_nulled",
                  "columns_dropped", "columns_pseudonymized", "columns_generalized",
                  "epsilon_spent", "delta_spent", "reason", "notes"]


def layout(**_query: object) -> html.Div:
    user = current_user()
    title = html.H2("Pipeline runs", className="mb-1")
    if not user.is_operator:
        return page_div(PIPELINE, [title, not_available(PIPELINE, user)])
    return page_div(PIPELINE, [
        title,
        html.P(
            "One run per file version. Reasons are counts-only: they name rows, columns and "
            "rules, never values. Open a run in Prefect for its logs.",
            className="text-muted",
        ),
        operator_banner(PIPELINE),
        loading(PIPELINE),
        dcc.Download(id=PIPELINE.download),
    ], exact=True)


def flow_run_url(run: RunRow, prefect_ui_url: str) -> str | None:
    """The run's own link, else the Prefect UI's page for a flow-run id."""
    if run.flow_run_url and run.flow_run_url.startswith(("http://", "https://")):
        return run.flow_run_url
    if UUID_RE.match(run.run_id):
        return f"{prefect_ui_url.rstrip('/')}/runs/flow-run/{run.run_id}"
    return None


def status_badge(status: str) -> dbc.Badge:
    return dbc.Badge(status.replace("_", " "), color=STATUS_COLOURS.get(status, "secondary"),
                     className="text-uppercase")


def counts(run: RunRow) -> str:
    parts = [f"{fmt_number(run.rows_in)} in" if run.rows_in is not None else None,
             f"{fmt_number(run.rows_out)} out" if run.rows_out is not None else None,
             f"{fmt_number(run.rows_suppressed)} suppressed"
             if run.rows_suppressed else None,
             f"{fmt_number(run.values_nulled)} values nulled"
             if run.values_nulled else None]
    cols = [f"{n} {what}" for n, what in ((run.columns_dropped, "dropped"),
                                          (run.columns_pseudonymized, "pseudonymized"),
                                          (run.columns_generalized, "generalized")) if n]
    rows = ", ".join(p for p in parts if p) or "–"
    return rows + (f"; columns: {', '.join(cols)}" if cols else "")


def run_row(run: RunRow, prefect_ui_url: str) -> html.Tr:
    url = flow_run_url(run, prefect_ui_url)
    link: Any = html.A("Prefect", href=url, target="_blank", rel="noopener noreferrer") \
        if url else "–"
    return html.Tr([
        html.Td(fmt_time(run.started_at), className="text-nowrap"),
        html.Td(run.dataset),
        html.Td(run.key.rsplit("/", 1)[-1], title=run.key),
        html.Td(status_badge(run.status)),
        html.Td(counts(run)),
        html.Td(fmt_epsilon(run.epsilon_spent) if run.epsilon_spent else "–"),
        html.Td([run.reason or "", html.Div(run.notes, className="text-muted")
                 if run.notes else None], className="small"),
        html.Td(link),
    ], id={"type": PIPELINE.run, "run": run.run_id})


def export_rows(runs: list[RunRow]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": r.run_id, "dataset": r.dataset, "object_key": r.key, "status": r.status,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "rows_in": r.rows_in, "rows_out": r.rows_out, "rows_suppressed": r.rows_suppressed,
            "values_nulled": r.values_nulled,
            "columns_dropped": r.columns_dropped,
            "columns_pseudonymized": r.columns_pseudonymized,
            "columns_generalized": r.columns_generalized,
            "epsilon_spent": r.epsilon_spent, "delta_spent": r.delta_spent, "reason": r.reason,
            "notes": r.notes,
        }
        for r in runs
    ]


def render(services: Services, user: User) -> Any:
    if not user.is_operator:
        return not_available(PIPELINE, user)
    try:
        runs = services.store().runs(limit=RUNS)
    except PipelineError as exc:
        return error_panel(exc, PIPELINE)
    if not runs:
        return message(
            "No runs yet",
            "The pipeline has not processed any file.",
            "drop a file into landing/<dataset>/ (or use the Upload page) with the service "
            "running ('privacy-analytics up').",
            id=PIPELINE.empty,
        )
    head = html.Thead(html.Tr([html.Th(h) for h in (
        "Started", "Dataset", "File", "Status", "Rows", "ε", "Reason", "Run")]))
    table = dbc.Table([head, html.Tbody([run_row(r, services.settings.prefect_ui_url)
                                         for r in runs])],
                      hover=True, responsive=True, size="sm", id=PIPELINE.runs)
    return chart_card(PIPELINE, "runs", f"Latest {len(runs)} runs", [table])


def export_csv(services: Services, user: User) -> dict[str, Any]:
    """The runs with their exact counts, for operators only (a viewer gets no file)."""
    if not user.is_operator:
        raise PreventUpdate
    runs = services.store().runs(limit=10_000)
    return dcc.send_string(rows_to_csv(EXPORT_COLUMNS, export_rows(runs)),
                           safe_filename("pipeline", "runs"), type="text/csv")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path="/pipeline", name="Pipeline runs", title="Pipeline runs",
                       order=3, layout=layout)

    render_on_change(app, PIPELINE, lambda: render(services, current_user()))

    export_on_click(app, PIPELINE, lambda _name: export_csv(services, current_user()))
