"""Upload: choose a dataset and a file, put it into ``landing/<dataset>/`` through the
write-only uploader, then follow the pipeline run it started.

The file goes from the browser to the uploader and nowhere else: the dashboard neither
parses nor keeps it. The run is found by polling ``runs(dataset=...)`` for the object key.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from analytics.queries import RunRow
from dashboard.components import error_panel, fmt_time, message
from dashboard.pages.pipeline import counts, flow_run_url, status_badge
from dashboard.services import Services, current_services
from dashboard.uploader import SUFFIXES, check_size
from privacy.errors import PipelineError

PAGE = "upload"
#: a run started this long before the upload finished still counts as the upload's run
CLOCK_SLACK = timedelta(seconds=5)


def layout(**_query: object) -> html.Div:
    services = current_services()
    settings = services.settings
    intro = html.Div([
        html.H2("Upload a file", className="mb-1"),
        html.P(
            "The file is put into landing/<dataset>/ and processed by the pipeline like any "
            "other dropped file: validated against the dataset's contract, masked, and only DP "
            "aggregates are published. The dashboard never reads it.",
            className="text-muted",
        ),
    ])
    if services.uploader is None:
        return html.Div([intro, message(
            "Uploads are not configured",
            "This dashboard has no write-only uploader.",
            "set PA_DASHBOARD_LANDING_DIR (embedded: <state dir>/objects/landing) or "
            "PA_DASHBOARD_S3_ENDPOINT with a put-only key, or drop files into the bucket with "
            "mc / aws s3 cp.",
            id=f"{PAGE}-disabled",
        )], id=f"{PAGE}-page")
    try:
        known = [d.name for d in services.store().datasets()]
    except PipelineError:
        known = []
    limit_mb = settings.max_upload_bytes / 1024**2
    form = dbc.Card(dbc.CardBody([
        dbc.Label("Dataset", html_for=f"{PAGE}-dataset"),
        dbc.Input(id=f"{PAGE}-dataset", type="text", list=f"{PAGE}-dataset-options",
                  placeholder="e.g. employees", value=known[0] if len(known) == 1 else None,
                  autocomplete="off"),
        html.Datalist([html.Option(value=n) for n in known], id=f"{PAGE}-dataset-options"),
        dbc.FormText("The dataset's contract decides how the file is checked and masked."),
        html.Div(className="mb-3"),
        dcc.Upload(
            html.Div(["Drag a file here or ", html.A("choose one", href="#")]),
            id=f"{PAGE}-file",
            multiple=False,
            max_size=settings.max_upload_bytes,
            accept=",".join(SUFFIXES),
            className="border border-2 rounded p-4 text-center text-muted",
            style={"borderStyle": "dashed", "cursor": "pointer"},
        ),
        dbc.FormText(f"CSV, JSON, JSON Lines or Parquet, up to {limit_mb:g} MB."),
        html.Div(id=f"{PAGE}-chosen", className="small mt-2"),
        dbc.Button("Upload", id=f"{PAGE}-submit", color="primary", className="mt-3"),
    ]), className="shadow-sm mb-4")
    return html.Div([
        intro,
        form,
        html.Div(id=f"{PAGE}-result"),
        dcc.Store(id=f"{PAGE}-pending"),
        html.Div(id=f"{PAGE}-run"),
    ], id=f"{PAGE}-page")


def decode(contents: str) -> bytes:
    """The bytes of a ``dcc.Upload`` data URL."""
    _, _, payload = contents.partition(",")
    return base64.b64decode(payload, validate=True)


def put(services: Services, dataset: str | None, filename: str | None,
        contents: str | None) -> tuple[Any, dict[str, str] | None]:
    if services.uploader is None:
        raise PreventUpdate
    if not dataset or not filename or not contents:
        return message("Choose a dataset and a file first", "Nothing was uploaded.",
                       colour="warning", id=f"{PAGE}-error"), None
    try:
        data = decode(contents)
    except (binascii.Error, ValueError):
        return message("The browser sent an unreadable file", "Nothing was uploaded.",
                       "choose the file again.", colour="warning", id=f"{PAGE}-error"), None
    try:
        check_size(filename, len(data), services.settings.max_upload_bytes)
        key = services.uploader.put(dataset.strip(), filename, data)
    except PipelineError as exc:
        return error_panel(exc, PAGE), None
    done = datetime.now(UTC)
    result = dbc.Alert([
        html.Strong("Uploaded. "),
        "The file is now ", html.Span(key, id=f"{PAGE}-key", className="font-monospace"),
        "; the pipeline picks it up in a few seconds.",
    ], color="success", id=f"{PAGE}-done")
    return result, {"key": key, "dataset": dataset.strip(), "at": done.isoformat()}


def find_run(runs: list[RunRow], key: str, since: datetime) -> RunRow | None:
    for run in runs:  # newest first
        if run.key == key and run.started_at >= since - CLOCK_SLACK:
            return run
    return None


def _links(url: str | None, run: RunRow) -> list[Any]:
    links: list[Any] = []
    if url:
        links.append(html.A("Open in Prefect", href=url, target="_blank",
                            rel="noopener noreferrer"))
    if run.status == "completed":
        if links:
            links.append(" · ")
        links.append(dcc.Link("See the dataset", href=f"/dataset/{run.dataset}"))
    return links


def run_status(services: Services, pending: dict[str, str] | None) -> Any:
    if not pending:
        return None
    try:
        runs = services.store().runs(limit=50, dataset=pending["dataset"])
    except PipelineError as exc:
        return error_panel(exc, PAGE)
    run = find_run(runs, pending["key"], datetime.fromisoformat(pending["at"]))
    if run is None:
        return dbc.Alert([dbc.Spinner(size="sm", spinner_class_name="me-2"),
                          "Waiting for the pipeline to pick up the file…"],
                         color="light", id=f"{PAGE}-waiting")
    url = flow_run_url(run, services.settings.prefect_ui_url)
    return dbc.Card(dbc.CardBody([
        html.H6("The run it started", className="mb-2"),
        html.Div([status_badge(run.status), html.Span(f" started {fmt_time(run.started_at)}")],
                 id=f"{PAGE}-run-status"),
        html.Div(f"Rows: {counts(run)}", className="small mt-1"),
        html.Div(run.reason, className="small mt-1") if run.reason else None,
        html.Div(_links(url, run), className="mt-2"),
    ]), className="shadow-sm")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path="/upload", name="Upload", title="Upload", order=4,
                       layout=layout)

    @app.callback(Output(f"{PAGE}-chosen", "children"), Input(f"{PAGE}-file", "filename"))
    def _chosen(filename: str | None) -> Any:
        return f"Selected: {filename}" if filename else None

    @app.callback(
        Output(f"{PAGE}-result", "children"),
        Output(f"{PAGE}-pending", "data"),
        Input(f"{PAGE}-submit", "n_clicks"),
        State(f"{PAGE}-dataset", "value"),
        State(f"{PAGE}-file", "filename"),
        State(f"{PAGE}-file", "contents"),
        prevent_initial_call=True,
    )
    def _submit(clicks: int | None, dataset: str | None, filename: str | None,
                contents: str | None) -> tuple[Any, dict[str, str] | None]:
        if not clicks:
            raise PreventUpdate
        return put(services, dataset, filename, contents)

    @app.callback(
        Output(f"{PAGE}-run", "children"),
        Input("app-marker", "data"),
        Input(f"{PAGE}-pending", "data"),
    )
    def _run(_marker: str | None, pending: dict[str, str] | None) -> Any:
        return run_status(services, pending)
