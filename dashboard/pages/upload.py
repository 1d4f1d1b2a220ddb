"""Upload: choose a dataset and a file, put it into ``landing/<dataset>/`` through the
write-only uploader, then follow the pipeline run it started.

The file goes from the browser to the uploader and nowhere else: the dashboard neither
parses nor keeps it. The run is found by polling ``runs(dataset=...)`` for the object key.

An operator page (an upload spends the dataset's privacy budget, and the run it started
shows exact counts): the layout and every callback check the signed-in user's role, and
:func:`put` checks the dataset against the operator's ``upload_datasets`` on the server.
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
from dashboard.auth import current_user
from dashboard.components import (
    error_panel,
    fmt_time,
    footer,
    message,
    not_available,
    operator_banner,
)
from dashboard.pages.pipeline import counts, flow_run_url, status_badge
from dashboard.services import Services, current_services
from dashboard.uploader import SUFFIXES, check_size
from dashboard.users import RoleRefused, User
from privacy.errors import PipelineError

PAGE = "upload"
#: a run started this long before the upload finished still counts as the upload's run
CLOCK_SLACK = timedelta(seconds=5)


def layout(**_query: object) -> html.Div:
    services = current_services()
    settings = services.settings
    user = current_user()
    if not user.is_operator:
        return html.Div([html.H2("Upload a file", className="mb-1"), not_available(PAGE, user),
                         footer(PAGE)], id=f"{PAGE}-page")
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
        ), footer(PAGE, exact=True)], id=f"{PAGE}-page")
    try:
        known = user.uploadable([d.name for d in services.store().datasets()])
    except PipelineError:
        known = user.uploadable([])
    if not known and not user.upload_any:
        return html.Div([intro, message(
            "You may not upload to any dataset",
            f"The users file lists no dataset for {user.describe()} to upload to.",
            "ask whoever keeps the dashboard's users file (PA_DASHBOARD_USERS_FILE) to add "
            "the dataset to your upload_datasets.",
            colour="warning",
            id=f"{PAGE}-no-datasets",
        ), footer(PAGE, exact=True)], id=f"{PAGE}-page")
    allowed = ("any dataset" if user.upload_any
               else "these datasets: " + ", ".join(known))
    limit_mb = settings.max_upload_bytes / 1024**2
    form = dbc.Card(dbc.CardBody([
        dbc.Label("Dataset", html_for=f"{PAGE}-dataset"),
        dbc.Input(id=f"{PAGE}-dataset", type="text", list=f"{PAGE}-dataset-options",
                  placeholder="e.g. employees", value=known[0] if len(known) == 1 else None,
                  autocomplete="off"),
        html.Datalist([html.Option(value=n) for n in known], id=f"{PAGE}-dataset-options"),
        dbc.FormText(f"You may upload to {allowed}. The dataset's contract decides how the "
                     "file is checked and masked; processing it spends its privacy budget.",
                     id=f"{PAGE}-allowed"),
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
        operator_banner(PAGE),
        form,
        html.Div(id=f"{PAGE}-result"),
        dcc.Store(id=f"{PAGE}-pending"),
        html.Div(id=f"{PAGE}-run"),
        footer(PAGE, exact=True),
    ], id=f"{PAGE}-page")


def decode(contents: str) -> bytes:
    """The bytes of a ``dcc.Upload`` data URL."""
    _, _, payload = contents.partition(",")
    return base64.b64decode(payload, validate=True)


def put(services: Services, user: User, dataset: str | None, filename: str | None,
        contents: str | None) -> tuple[Any, dict[str, str] | None]:
    """Put the file into landing/<dataset>/ if ``user`` may upload there."""
    if not user.is_operator:
        return not_available(PAGE, user), None
    if services.uploader is None:
        raise PreventUpdate
    if not all(isinstance(x, str) and x for x in (dataset, filename, contents)):
        return message("Choose a dataset and a file first", "Nothing was uploaded.",
                       colour="warning", id=f"{PAGE}-error"), None
    assert isinstance(dataset, str) and isinstance(filename, str) and isinstance(contents, str)
    dataset = dataset.strip()
    if not user.may_upload(dataset):
        return error_panel(RoleRefused(
            f"{user.describe()} may not upload to dataset {dataset[:64]!r}: the users file "
            "does not list it in upload_datasets; nothing was uploaded"), PAGE), None
    try:
        data = decode(contents)
    except (binascii.Error, ValueError):
        return message("The browser sent an unreadable file", "Nothing was uploaded.",
                       "choose the file again.", colour="warning", id=f"{PAGE}-error"), None
    try:
        check_size(filename, len(data), services.settings.max_upload_bytes)
        key = services.uploader.put(dataset, filename, data)
    except PipelineError as exc:
        return error_panel(exc, PAGE), None
    done = datetime.now(UTC)
    result = dbc.Alert([
        html.Strong("Uploaded. "),
        "The file is now ", html.Span(key, id=f"{PAGE}-key", className="font-monospace"),
        "; the pipeline picks it up in a few seconds.",
    ], color="success", id=f"{PAGE}-done")
    return result, {"key": key, "dataset": dataset, "at": done.isoformat()}


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


def run_status(services: Services, user: User, pending: dict[str, str] | None) -> Any:
    if not user.is_operator:
        return not_available(PAGE, user)
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
        return f"Selected: {filename}" if filename and current_user().is_operator else None

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
        return put(services, current_user(), dataset, filename, contents)

    @app.callback(
        Output(f"{PAGE}-run", "children"),
        Input("app-marker", "data"),
        Input(f"{PAGE}-pending", "data"),
    )
    def _run(_marker: str | None, pending: dict[str, str] | None) -> Any:
        return run_status(services, current_user(), pending)
