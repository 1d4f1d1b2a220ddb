"""One module per page; each has ``register(app, services)``, which calls
``dash.register_page`` and registers the page's callbacks. ``dashboard.app.create_app``
calls them after the Dash app exists; importing a page module has no side effects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from dashboard.ids import SHELL, Page
from privacy.errors import PipelineError


def render_on_change(app: Dash, page: Page, render: Callable[..., Any], *states: State) -> None:
    """Fill ``page.content`` with ``render(*values of states)`` when the page opens and
    whenever the store changed (the shell's change marker)."""

    @app.callback(Output(page.content, "children"), Input(SHELL.marker, "data"), *states)
    def _render(_marker: str | None, *values: Any) -> Any:
        return render(*values)


def export_on_click(app: Dash, page: Page, send: Callable[..., dict[str, Any]],
                    *states: State) -> None:
    """Send ``send(name, *values of states)`` to ``page.download`` when the "Download CSV"
    button of pattern id ``{"type": page.export, "name": name}`` is clicked; no update
    when nothing was clicked, ``send`` raises PreventUpdate, or the store cannot answer."""

    @app.callback(Output(page.download, "data"),
                  Input({"type": page.export, "name": ALL}, "n_clicks"), *states,
                  prevent_initial_call=True)
    def _export(clicks: list[int | None], *values: Any) -> dict[str, Any]:
        trigger = ctx.triggered_id
        if not trigger or not any(clicks) or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        try:
            return send(str(trigger["name"]), *values)
        except PipelineError:
            raise PreventUpdate from None
