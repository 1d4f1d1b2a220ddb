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

from analytics.store.rows import RunRow
from dashboard.auth import current_user
from dashboard.components import (
    error_panel,
    fmt_time,
    message,
    not_available,
    operator_banner,
    page_div,
)
from dashboard.ids import SHELL, UPLOAD
from dashboard.pages.pipeline import counts, flow_run_url, status_badge
from dashboard.services import Services, current_services
from dashboard.uploader import SUFFIXES, check_size
from dashboard.users import RoleRefused, User
from privacy.errors import PipelineError

#: a run started this long before the upload finished still counts as the upload's run
CLOCK_SLACK = timedelta(seconds=5)


_TITLE = "Upload a file"


def _intro() -> html.Div:
    return html.Div([
        html.H2(_TITLE, className="mb-1"),
        html.P(
            "The file is put into landing/<dataset>/ and processed by the pipeline like any "
            "other dropped file: validated against the dataset's contract, masked, and only DP "
            "aggregates are published. The dashboard never reads it.",
            className="text-muted",
        ),
    ])


def _not_configured() -> dbc.Alert:
    return message(
        "Uploads are not configured",
        "This dashboard has no write-only uploader.",
        "set PA_DASHBOARD_LANDING_DIR (embedded: <state dir>/objects/landing) or "
        "PA_DASHBOARD_S3_ENDPOINT with a put-only key, or drop files into the bucket with "
        "mc / aws s3 cp.",
        id=UPLOAD.disabled,
    )


def _nowhere(user: User) -> dbc.Alert:
    return message(
        "You may not upload to any dataset",
        f"The users file lists no dataset for {user.describe()} to upload to.",
        "ask whoever keeps the dashboard's users file (PA_DASHBOARD_USERS_FILE) to add "
        "the dataset to your upload_datasets.",
        colour="warning",
        id=UPLOAD.no_datasets,
    )


def _form(user: User, known: list[str], max_bytes: int) -> dbc.Card:
    """The dataset (one of ``known``, the datasets ``user`` may upload to) and the file."""
    allowed = "any dataset" if user.upload_any else "these datasets: " + ", ".join(known)
    return dbc.Card(dbc.CardBody([
        dbc.Label("Dataset", html_for=UPLOAD.dataset),
        dbc.Input(id=UPLOAD.dataset, type="text", list=UPLOAD.dataset_options,
                  placeholder="e.g. employees", value=known[0] if len(known) == 1 else None,
                  autocomplete="off"),
        html.Datalist([html.Option(value=n) for n in known], id=UPLOAD.dataset_options),
        dbc.FormText(f"You may upload to {allowed}. The dataset's contract decides how the "
                     "file is checked and masked; processing it spends its privacy budget.",
                     id=UPLOAD.allowed),
        html.Div(className="mb-3"),
        dcc.Upload(
            html.Div(["Drag a file here or ", html.A("choose one", href="#")]),
            id=UPLOAD.file,
            multiple=False,
            max_size=max_bytes,
            accept=",".join(SUFFIXES),
            className="border border-2 rounded p-4 text-center text-muted",
            style={"borderStyle": "dashed", "cursor": "pointer"},
        ),
        dbc.FormText(f"CSV, JSON, JSON Lines or Parquet, up to {max_bytes / 1024**2:g} MB."),
        html.Div(id=UPLOAD.chosen, className="small mt-2"),
        dbc.Button("Upload", id=UPLOAD.submit, color="primary", className="mt-3"),
    ]), className="shadow-sm mb-4")


def layout(**_query: object) -> html.Div:
    services = current_services()
    user = current_user()
    if not user.is_operator:
        return page_div(UPLOAD, [html.H2(_TITLE, className="mb-1"), not_available(UPLOAD, user)])
    if services.uploader is None:
        return page_div(UPLOAD, [_intro(), _not_configured()], exact=True)
    try:
        known = user.uploadable([d.name for d in services.store().datasets()])
    except PipelineError:
        known = user.uploadable([])
    if not known and not user.upload_any:
        return page_div(UPLOAD, [_intro(), _nowhere(user)], exact=True)
    return page_div(UPLOAD, [
        _intro(),
        operator_banner(UPLOAD),
        _form(user, known, services.settings.max_upload_bytes),
        html.Div(id=UPLOAD.result),
        dcc.Store(id=UPLOAD.pending),
        html.Div(id=UPLOAD.run),
    ], exact=True)


def decode(contents: str) -> bytes:
    """The bytes of a ``dcc.Upload`` data URL."""
    _, _, payload = contents.partition(",")
    return base64.b64decode(payload, validate=True)


def put(services: Services, user: User, dataset: str | None, filename: str | None,
        contents: str | None) -> tuple[Any, dict[str, str] | None]:
    """Put the file into landing/<dataset>/ if ``user`` may upload there."""
    if not user.is_operator:
        return not_available(UPLOAD, user), None
    if services.uploader is None:
        raise PreventUpdate
    if not all(isinstance(x, str) and x for x in (dataset, filename, contents)):
        return message("Choose a dataset and a file first", "Nothing was uploaded.",
                       colour="warning", id=UPLOAD.error), None
    assert isinstance(dataset, str) and isinstance(filename, str) and isinstance(contents, str)
    dataset = dataset.strip()
    if not user.may_upload(dataset):
        return error_panel(RoleRefused(
            f"{user.describe()} may not upload to dataset {dataset[:64]!r}: the users file "
            "does not list it in upload_datasets; nothing was uploaded"), UPLOAD), None
    try:
        data = decode(contents)
    except (binascii.Error, ValueError):
        return message("The browser sent an unreadable file", "Nothing was uploaded.",
                       "choose the file again.", colour="warning", id=UPLOAD.error), None
    try:
        check_size(filename, len(data), services.settings.max_upload_bytes)
        key = services.uploader.put(dataset, filename, data)
    except PipelineError as exc:
        return error_panel(exc, UPLOAD), None
    done = datetime.now(UTC)
    result = dbc.Alert([
        html.Strong("Uploaded. "),
        "The file is now ", html.Span(key, id=UPLOAD.key, className="font-monospace"),
        "; the pipeline picks it up in a few seconds.",
    ], color="success", id=UPLOAD.done)
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
        return not_available(UPLOAD, user)
    if not pending:
        return None
    try:
        runs = services.store().runs(limit=50, dataset=pending["dataset"])
    except PipelineError as exc:
        return error_panel(exc, UPLOAD)
    run = find_run(runs, pending["key"], datetime.fromisoformat(pending["at"]))
    if run is None:
        return dbc.Alert([dbc.Spinner(size="sm", spinner_class_name="me-2"),
                          "Waiting for the pipeline to pick up the file…"],
                         color="light", id=UPLOAD.waiting)
    url = flow_run_url(run, services.settings.prefect_ui_url)
    return dbc.Card(dbc.CardBody([
        html.H6("The run it started", className="mb-2"),
        html.Div([status_badge(run.status), html.Span(f" started {fmt_time(run.started_at)}")],
                 id=UPLOAD.run_status),
        html.Div(f"Rows: {counts(run)}", className="small mt-1"),
        html.Div(run.reason, className="small mt-1") if run.reason else None,
        html.Div(_links(url, run), className="mt-2"),
    ]), className="shadow-sm")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path="/upload", name="Upload", title="Upload", order=4,
                       layout=layout)

    @app.callback(Output(UPLOAD.chosen, "children"), Input(UPLOAD.file, "filename"))
    def _chosen(filename: str | None) -> Any:
        return f"Selected: {filename}" if filename and current_user().is_operator else None

    @app.callback(
        Output(UPLOAD.result, "children"),
        Output(UPLOAD.pending, "data"),
        Input(UPLOAD.submit, "n_clicks"),
        State(UPLOAD.dataset, "value"),
        State(UPLOAD.file, "filename"),
        State(UPLOAD.file, "contents"),
        prevent_initial_call=True,
    )
    def _submit(clicks: int | None, dataset: str | None, filename: str | None,
                contents: str | None) -> tuple[Any, dict[str, str] | None]:
        if not clicks:
            raise PreventUpdate
        return put(services, current_user(), dataset, filename, contents)

    @app.callback(
        Output(UPLOAD.run, "children"),
        Input(SHELL.marker, "data"),
        Input(UPLOAD.pending, "data"),
    )
    def _run(_marker: str | None, pending: dict[str, str] | None) -> Any:
        return run_status(services, current_user(), pending)
