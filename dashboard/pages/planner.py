"""Planner: what a contract will buy, before any file, with ε and the analyses' weights
edited live (the page behind `privacy-analytics plan`).

An operator drops a contract file on the page; the page parses it and reads nothing else:
not the store, not a data file, not the contracts folder. ``analytics.planner`` builds a
synthetic file of the contract's public shape and runs the real engine on it. Every figure
is a prediction from public parameters. Changing ε or a weight here changes nothing: copy
the values into the contract to use them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard.components import page_div
from dashboard.ids import PLANNER, pattern
from dashboard.services import Services
from privacy.contract import Contract, parse_contract
from privacy.errors import PipelineError

#: engine runs per prediction: fewer than the CLI's 5, so that editing stays quick
RUNS = 2
#: the largest contract file the page parses
MAX_CONTRACT_BYTES = 256 * 1024
CLAIM = ("Every figure on this page is a prediction from the contract dropped here and the "
         "numbers typed in (a synthetic file of that shape, released by the real engine): no "
         "data, no release and no budget figure of the store reaches this page.")


def contract_text(contents: str | None) -> str:
    """The text of a dropped contract file (a data URL), or PipelineError saying why not."""
    if not contents or "," not in contents:
        raise PipelineError("drop a contract file (YAML) on the page")
    try:
        raw = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        raise PipelineError("the dropped file could not be read") from None
    if len(raw) > MAX_CONTRACT_BYTES:
        raise PipelineError(f"a contract is at most {MAX_CONTRACT_BYTES // 1024} KiB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PipelineError("the dropped file is not UTF-8 text: is it a contract?") from None


def _number(id_: str, label: str, value: float, step: float | str = "any",
            minimum: float = 0) -> dbc.Col:
    return dbc.Col([
        dbc.Label(label, html_for=id_, className="small mb-0"),
        dcc.Input(id=id_, type="number", value=value, min=minimum, step=step, debounce=True,
                  className="form-control form-control-sm"),
    ], md=2)


def layout(**_query: object) -> html.Div:
    return page_div(PLANNER, [
        html.H2("Planner", className="mb-1"),
        html.P("What a contract's releases will show before any file: each analysis's "
               "expected 95% half-width, the ε split and the releases the cap allows. Drop a "
               "contract, then edit ε and the analyses' weights to see the trade-off; nothing "
               "here changes the contract.", className="text-muted"),
        dcc.Upload(html.Div(["Drop a contract file (", html.Code("contracts/<dataset>.yaml"),
                             ") here, or click to choose one"]),
                   id=PLANNER.upload, multiple=False, max_size=MAX_CONTRACT_BYTES,
                   className="border rounded p-3 mb-3 text-center text-muted"),
        dcc.Store(id=PLANNER.contract),
        html.Div(id=PLANNER.form),
        dcc.Loading(html.Div(id=PLANNER.content), type="dot", delay_show=300),
    ], claim=CLAIM)


def _name(a: Any) -> str:
    """An analysis as the weights' labels name it: "comparison efficiency by team"."""
    what = getattr(a, "measure", None) or getattr(a, "time", None) or ""
    by = getattr(a, "by", None)
    return " ".join(x for x in (a.kind, what, f"by {by}" if by else "") if x)


def form(c: Contract) -> Any:
    """The numbers to plan with, with the contract's own defaults."""
    import analytics.planner as planner

    weights = [
        dbc.Col([
            dbc.Label(f"weight: {_name(a)}", className="small mb-0"),
            dcc.Input(id=pattern(PLANNER.weight, str(i)), type="number", value=a.weight,
                      min=0.01, step="any", debounce=True,
                      className="form-control form-control-sm"),
        ], md=2)
        for i, a in enumerate(c.analyses) if a.kind != "forecast"
    ]
    return html.Div([
        html.H5(f"Contract: {c.dataset} (v{c.version})", id=PLANNER.dataset),
        dbc.Row([
            _number(PLANNER.people, "people in a file", 1000, 1, 1),
            _number(PLANNER.rows, "rows per person", c.max_rows_per_unit, 1, 1),
            _number(PLANNER.epsilon, "ρ per release (zCDP)" if c.budget.accounting == "zcdp"
                    else "ε per release", planner.per_release(c), "any", 0.0001),
            _number(PLANNER.files, "files (dataset release)", 1, 1, 1),
        ], className="g-2 mb-2"),
        dbc.Row(weights, className="g-2 mb-3"),
    ])


def _edited(c: Contract, epsilon: float | None, weights: list[float | None]) -> Contract:
    import analytics.planner as planner

    paid = [i for i, a in enumerate(c.analyses) if a.kind != "forecast"]
    analyses = list(c.analyses)
    for i, w in zip(paid, weights, strict=False):
        if w is not None and w > 0:
            analyses[i] = analyses[i].model_copy(update={"weight": float(w)})
    eps = epsilon if epsilon and epsilon > 0 else planner.per_release(c)
    eps = min(eps, planner.per_release_cap(c))
    return c.model_copy(update={"analyses": analyses, "budget": planner.budget_at(c, eps)})


def _table(plan: Any) -> dbc.Table:
    rows = [v for v in plan.values if v.half_width is not None]
    head = html.Thead(html.Tr([html.Th(h) for h in ("analysis", "value", "expected", "±",
                                                     "relative ±")]))
    body = html.Tbody([html.Tr([
        html.Td(v.analysis), html.Td(" ".join(x for x in (v.metric, v.column or "",
                                                           f"per {v.per}" if v.per else "") if x)),
        html.Td("–" if v.expected is None else f"{v.expected:,.4g}"),
        html.Td(f"±{v.half_width:,.4g}"),
        html.Td("–" if v.relative is None else f"±{v.relative:.1%}"),
    ]) for v in rows])
    return dbc.Table([head, body], size="sm", hover=True, className="mb-2")


def result(text: str | None, people: Any, rows: Any, epsilon: Any, files: Any,
           weights: list[Any]) -> Any:
    """The predictions for the contract ``text`` at the numbers given."""
    import analytics.planner as planner
    from analytics.dataset_plan import plan_dataset_release

    if not text:
        return None
    try:
        c = _edited(parse_contract(text), epsilon, weights)
        n = int(people or 1)
        a = planner.assume(c, n, int(rows) if rows else None, runs=RUNS)
        plan = planner.predict(c, a)
        ds = plan_dataset_release(c, n, int(files), a.rows_per_person, runs=RUNS) \
            if files and int(files) > 1 else None
    except PipelineError as exc:
        return dbc.Alert(str(exc), color="warning", id=PLANNER.error)
    split = ", ".join(f"{name} {eps:.3g}" for name, eps, _ in plan.split if eps)
    parts: list[Any] = [
        html.H5(f"One file of {n:,} people × {a.rows_per_person} rows", className="mt-2"),
        _table(plan),
        html.P(f"{'ρ' if c.budget.accounting == 'zcdp' else 'ε'} per release {plan.epsilon:g} "
               f"(δ {plan.delta:.2g}), split: {split}. The ε cap "
               f"{c.budget.epsilon_cap:g} allows {plan.releases_allowed} releases"
               f"{' per ' + c.budget.window if c.budget.policy == 'window' else ''}.",
               className="small", id=PLANNER.split),
    ]
    if ds is not None:
        left = (f"about {ds.rows_left_out:.0%} of rows left out" if ds.rows_left_out
                else "no row left out")
        parts += [html.H5(f"Dataset release over {ds.files} files: each person {ds.rows_per_person} "
                          f"rows, at most {ds.bound} kept ({left})", className="mt-3"),
                  _table(ds.plan)]
    return html.Div(parts, id=PLANNER.result)


def register(app: Dash, services: Services) -> None:
    dash.register_page(__name__, path="/planner", name="Planner", title="Planner", order=5,
                       layout=layout)

    @app.callback(Output(PLANNER.form, "children"), Output(PLANNER.contract, "data"),
                  Input(PLANNER.upload, "contents"), prevent_initial_call=True)
    def _dropped(contents: str | None) -> tuple[Any, str | None]:
        if not contents:
            raise PreventUpdate
        try:
            text = contract_text(contents)
            return form(parse_contract(text)), text
        except PipelineError as exc:
            return dbc.Alert(str(exc), color="warning", id=PLANNER.error), None

    @app.callback(
        Output(PLANNER.content, "children"),
        Input(PLANNER.people, "value"), Input(PLANNER.rows, "value"),
        Input(PLANNER.epsilon, "value"), Input(PLANNER.files, "value"),
        Input(pattern(PLANNER.weight, ALL), "value"), State(PLANNER.contract, "data"),
    )
    def _plan(people: Any, rows: Any, epsilon: Any, files: Any, weights: list[Any],
              text: str | None) -> Any:
        return result(text, people, rows, epsilon, files, weights)
