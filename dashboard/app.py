"""The Dash app: ``create_app(settings)`` builds one, ``serve(settings)`` runs it.

Pages live in ``dashboard/pages/``, one module each, whose ``register(app, services)``
calls ``dash.register_page`` and registers the page's callbacks on that app (never through
the global ``dash.callback``, so every app, one per test included, gets its own, and
importing a page module has no side effects).

Refreshing without a reload: the shell polls ``change_marker()`` every
``refresh_seconds``; the marker sits in ``app-marker`` and changes only when the store
changed, and every page renders from a callback whose input is that marker. An unchanged
marker answers "no update" (HTTP 204), so nothing re-renders.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import importlib
import logging
from types import ModuleType
from typing import Any

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server as werkzeug_make_server

from dashboard.services import EXTENSION, Services, current_services
from dashboard.settings import DashboardSettings
from dashboard.theme import install_template
from privacy.errors import PipelineError

log = logging.getLogger(__name__)

PAGES = ("overview", "dataset", "budget", "pipeline", "upload")
UNAVAILABLE = "unavailable"
NAV = (("Overview", "/"), ("Privacy budget", "/budget"), ("Pipeline runs", "/pipeline"),
       ("Upload", "/upload"))


def _pages() -> list[ModuleType]:
    return [importlib.import_module(f"dashboard.pages.{name}") for name in PAGES]


def read_marker(services: Services) -> str:
    """The store's change marker as text, or ``unavailable`` when it cannot be reached (the
    pages then show why, through the error component)."""
    try:
        return str(services.store().change_marker())
    except PipelineError:
        return UNAVAILABLE


def _shell() -> html.Div:
    services = current_services()
    settings = services.settings
    links = [dbc.NavItem(dbc.NavLink(label, href=href, active="exact", id=f"app-nav-{i}"))
             for i, (label, href) in enumerate(NAV)]
    datasets = dbc.DropdownMenu([], label="Datasets", nav=True, in_navbar=True,
                                id="app-datasets", align_end=True)
    nav = dbc.Nav([links[0], datasets, *links[1:]], navbar=True, className="ms-auto")
    navbar = dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand(settings.title, href="/", id="app-brand"),
            html.Span("DP aggregates only", className="badge bg-light text-dark me-3"),
            nav,
        ]),
        color="primary",
        dark=True,
        className="mb-4",
    )
    return html.Div([
        navbar,
        dbc.Container(dash.page_container, fluid="lg", id="app-main"),
        dcc.Interval(id="app-refresh", interval=int(settings.refresh_seconds * 1000)),
        dcc.Store(id="app-marker", data=read_marker(services)),
        html.Footer(
            dbc.Container(
                "Every number on these pages is a differentially private aggregate read "
                "from the aggregate store; no row of data ever reaches the dashboard.",
                className="small text-muted py-3",
            ),
            className="border-top mt-4",
        ),
    ])


def _install_basic_auth(server: flask.Flask, username: str, password: str) -> None:
    expected_user = username.encode()
    expected_password = password.encode()

    @server.before_request
    def _require_login() -> flask.Response | None:
        header = flask.request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                user, _, pw = base64.b64decode(encoded, validate=True).partition(b":")
            except (binascii.Error, ValueError):
                user, pw = b"", b""
            ok_user = hmac.compare_digest(user, expected_user)
            ok_pw = hmac.compare_digest(pw, expected_password)
            if ok_user and ok_pw:
                return None
        return flask.Response(
            "Login required.", 401, {"WWW-Authenticate": 'Basic realm="privacy-analytics"'}
        )


def create_app(settings: DashboardSettings | None = None,
               services: Services | None = None) -> Dash:
    """A new dashboard app. Nothing is read from the store until a page is requested.

    Refuses (PipelineError) to build an app that listens off loopback without a login.
    """
    settings = settings or (services.settings if services else DashboardSettings())
    settings.check_startup()
    services = services or Services.from_settings(settings)
    install_template()
    app = Dash(
        "dashboard",
        use_pages=True,
        pages_folder="",
        # the Bootswatch theme and any CSS are served from dashboard/assets/ (no CDN)
        title=settings.title,
        update_title="",  # no "Updating..." tab title while callbacks run
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    server: flask.Flask = app.server
    server.extensions[EXTENSION] = services
    # base64 makes an upload a third bigger; leave room for the rest of the request
    server.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes * 4 // 3 + 1024**2
    if settings.login_required:
        assert settings.username and settings.password is not None
        _install_basic_auth(server, settings.username, settings.password.get_secret_value())
    for page in _pages():  # dash.register_page needs an app instance: called after Dash()
        page.register(app, services)
    app.layout = _shell

    @app.callback(Output("app-datasets", "children"), Input("app-marker", "data"))
    def _datasets_menu(_marker: str | None) -> list[Any]:
        try:
            names = [d.name for d in services.store().datasets()]
        except PipelineError:
            names = []
        if not names:
            return [dbc.DropdownMenuItem("No datasets yet", disabled=True)]
        return [dbc.DropdownMenuItem(n, href=f"/dataset/{n}") for n in names]

    @app.callback(
        Output("app-marker", "data"),
        Input("app-refresh", "n_intervals"),
        State("app-marker", "data"),
        prevent_initial_call=True,
    )
    def _poll(_n: int | None, old: str | None) -> str:
        marker = read_marker(services)
        if marker == old:
            raise PreventUpdate
        return marker

    return app


def make_server(settings: DashboardSettings | None = None) -> BaseWSGIServer:
    """A threaded werkzeug server for the dashboard, bound but not yet serving.

    For supervisors that run it in a thread: ``server.serve_forever()`` there, then
    ``server.shutdown()`` to stop. Port 0 binds a free port (``server.server_port``).
    """
    settings = settings or DashboardSettings()
    app = create_app(settings)
    return werkzeug_make_server(settings.host, settings.port, app.server, threaded=True)


def serve(settings: DashboardSettings | None = None, **run_kwargs: Any) -> None:
    """Build the app and serve it on ``settings.host:settings.port`` until interrupted.

    Uses werkzeug's threaded server (enough for a team's dashboard); behind a WSGI server,
    use ``create_app(settings).server`` instead.
    """
    settings = settings or DashboardSettings()
    app = create_app(settings)
    log.info("dashboard at http://%s:%s/", settings.host, settings.port)
    app.run(host=settings.host, port=settings.port, debug=False, **run_kwargs)
