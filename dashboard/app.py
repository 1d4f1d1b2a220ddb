"""The Dash app: ``create_app(settings)`` builds one, ``serve(settings)`` runs it.

Pages live in ``dashboard/pages/``, one module each, whose ``register(app, services)``
calls ``dash.register_page`` and registers the page's callbacks on that app (never through
the global ``dash.callback``, so every app, one per test included, gets its own, and
importing a page module has no side effects).

Refreshing without a reload: the shell polls ``change_marker()`` every
``refresh_seconds``; the marker sits in ``app-marker`` (``ids.SHELL.marker``) and changes
only when the store changed, and every page renders from a callback whose input is that marker. An unchanged
marker answers "no update" (HTTP 204), so nothing re-renders. The marker the browser
holds is a hash: it says *that* the store changed, nothing about what or how much.

Two audiences (``dashboard/users.py``): the navigation shows the operator pages (runs,
upload) to operators only, and ``dashboard/auth.py`` enforces it on the server. Each page
ends with its own footer: the DP claim on viewer pages, the exact-counts notice on operator
pages.
"""

from __future__ import annotations

import hashlib
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

from dashboard.auth import current_user, install_login
from dashboard.ids import PAGES, SHELL
from dashboard.services import EXTENSION, Services, current_services
from dashboard.settings import DashboardSettings, is_loopback
from dashboard.theme import install_template
from dashboard.users import User, load_users
from privacy.errors import PipelineError

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
#: (label, path, operators only)
#: (label, path, operators only): the planner is for the people who write contracts
NAV = (("Overview", "/", False), ("Privacy budget", "/budget", False),
       ("Pipeline runs", "/pipeline", True), ("Upload", "/upload", True),
       ("Planner", "/planner", True))


def _pages() -> list[ModuleType]:
    return [importlib.import_module(f"dashboard.pages.{page.name}") for page in PAGES]


def read_marker(services: Services) -> str:
    """The store's change marker as text, or ``unavailable`` when it cannot be reached (the
    pages then show why, through the error component)."""
    try:
        marker = str(services.store().change_marker())
    except PipelineError:
        return UNAVAILABLE
    return hashlib.sha256(marker.encode()).hexdigest()[:20]


def _navbar(title: str, user: User) -> dbc.Navbar:
    """The title, who is signed in with which role, and the pages the role may open."""
    links = [dbc.NavItem(dbc.NavLink(label, href=href, active="exact", id=f"{SHELL.nav}-{i}"))
             for i, (label, href, operators_only) in enumerate(NAV)
             if user.is_operator or not operators_only]
    datasets = dbc.DropdownMenu([], label="Datasets", nav=True, in_navbar=True,
                                id=SHELL.datasets, align_end=True)
    nav = dbc.Nav([links[0], datasets, *links[1:]], navbar=True, className="ms-auto")
    badge = (html.Span("operator: exact counts on runs and upload",
                       className="badge bg-warning text-dark me-2", id=SHELL.role)
             if user.is_operator else
             html.Span("viewer: DP releases only", className="badge bg-light text-dark me-2",
                       id=SHELL.role))
    who = html.Span(user.describe(), className="small text-white-50 me-3", id=SHELL.user)
    return dbc.Navbar(
        dbc.Container([dbc.NavbarBrand(title, href="/", id=SHELL.brand), badge, who, nav]),
        color="primary",
        dark=True,
        className="mb-4",
    )


def _shell() -> html.Div:
    services = current_services()
    settings = services.settings
    return html.Div([
        _navbar(settings.title, current_user()),
        dbc.Container(dash.page_container, fluid="lg", id=SHELL.main),
        dcc.Interval(id=SHELL.refresh, interval=int(settings.refresh_seconds * 1000)),
        dcc.Store(id=SHELL.marker, data=read_marker(services)),
    ])


def create_app(settings: DashboardSettings | None = None,
               services: Services | None = None) -> Dash:
    """A new dashboard app. Nothing is read from the store until a page is requested.

    Refuses (PipelineError) to build an app that listens off loopback without a users
    file, or whose users file is broken.
    """
    settings = settings or (services.settings if services else DashboardSettings())
    settings.check_startup()
    services = services or Services.from_settings(settings)
    if services.users is None and settings.login_required:
        services.users = load_users(settings)
    if services.users is None and not is_loopback(settings.host):
        raise PipelineError("off loopback the dashboard needs users: set PA_DASHBOARD_USERS_FILE")
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
    install_login(server, services)
    for page in _pages():  # dash.register_page needs an app instance: called after Dash()
        page.register(app, services)
    app.layout = _shell
    _register_shell(app, services)
    return app


def _register_shell(app: Dash, services: Services) -> None:
    """The shell's callbacks: the datasets menu, and polling the store's change marker."""

    @app.callback(Output(SHELL.datasets, "children"), Input(SHELL.marker, "data"))
    def _datasets_menu(_marker: str | None) -> list[Any]:
        try:
            names = [d.name for d in services.store().datasets()]
        except PipelineError:
            names = []
        if not names:
            return [dbc.DropdownMenuItem("No datasets yet", disabled=True)]
        return [dbc.DropdownMenuItem(n, href=f"/dataset/{n}") for n in names]

    @app.callback(
        Output(SHELL.marker, "data"),
        Input(SHELL.refresh, "n_intervals"),
        State(SHELL.marker, "data"),
        prevent_initial_call=True,
    )
    def _poll(_n: int | None, old: str | None) -> str:
        marker = read_marker(services)
        if marker == old:
            raise PreventUpdate
        return marker


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
