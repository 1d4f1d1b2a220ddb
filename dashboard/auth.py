"""Login and roles on the server: who each request is, and what a viewer may not reach.

``install_login(server, services)`` adds one Flask ``before_request`` hook:

- with a users file: HTTP basic auth against it (401 otherwise; put TLS in front in
  production), and the role comes from the file;
- without one (loopback only, see ``DashboardSettings.check_startup``): the request is
  the local operator, as before there were roles.

The hook also refuses (403) a viewer's call of any Dash callback whose outputs belong to an
operator page: component ids are prefixed with their page's name (``dashboard.ids``), so
``pipeline-*`` and ``upload-*`` outputs are operator data. That is the outer lock; the operator pages' layouts
and callbacks check :func:`current_user` themselves as well, so neither the navigation nor a
hand-made ``POST /_dash-update-component`` gives a viewer operator data.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import Any

import flask

from dashboard.ids import OPERATOR_PAGES
from dashboard.services import Services
from dashboard.users import LOCAL_OPERATOR, NOBODY, User

_G_USER = "pa_user"
REALM = 'Basic realm="privacy-analytics", charset="UTF-8"'
REFUSAL = "Not available to your role: this is operator information."


def current_user() -> User:
    """The user of the current request (the least privileged one outside a request)."""
    if not flask.has_request_context():
        return NOBODY
    user: User | None = flask.g.get(_G_USER)
    return user if user is not None else NOBODY


def _credentials() -> tuple[str, str] | None:
    header = flask.request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    name, sep, password = raw.partition(":")
    return (name, password) if sep else None


def _output_ids(outputs: Any) -> Iterator[str]:
    """The component ids (or pattern ids' ``type``) a Dash callback request writes to."""
    if isinstance(outputs, list):
        for item in outputs:
            yield from _output_ids(item)
    elif isinstance(outputs, dict):
        cid = outputs.get("id")
        if isinstance(cid, str):
            yield cid
        elif isinstance(cid, dict) and isinstance(cid.get("type"), str):
            yield cid["type"]


def operator_outputs(payload: Any) -> list[str]:
    """The ids among a callback request's outputs that belong to an operator page."""
    if not isinstance(payload, dict):
        return []
    ids = list(_output_ids(payload.get("outputs")))
    output = payload.get("output")
    if isinstance(output, str):  # "a.children" or "..a.children...b.data.."
        for part in output.strip(".").split("..."):
            cid = part.rpartition(".")[0]
            if cid.startswith("{"):
                try:
                    cid = json.loads(cid).get("type", "")
                except (ValueError, AttributeError):
                    cid = ""
            ids.append(cid if isinstance(cid, str) else "")
    return [i for i in ids if i.startswith(tuple(p.id("") for p in OPERATOR_PAGES))]


def install_login(server: flask.Flask, services: Services) -> None:
    users = services.users

    @server.before_request
    def _identify() -> flask.Response | None:
        if users is None:
            user = LOCAL_OPERATOR
        else:
            given = _credentials()
            found = users.authenticate(*given) if given else None
            if found is None:
                return flask.Response("Login required.", 401, {"WWW-Authenticate": REALM})
            user = found
        setattr(flask.g, _G_USER, user)
        if (
            not user.is_operator
            and flask.request.method == "POST"
            and flask.request.path.endswith("/_dash-update-component")
            and operator_outputs(flask.request.get_json(silent=True))
        ):
            return flask.Response(REFUSAL, 403, {"Content-Type": "text/plain; charset=utf-8"})
        return None
