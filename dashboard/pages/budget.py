"""Privacy budget: per dataset a gauge of ε spent versus its cap (under zCDP, OpenDP's
conversion of the ρ spent, with ρ itself), the releases the cap still pays for and when
they run out at the rate so far, the pinned budget terms
and every change to them (shown as a change to the guarantee, weakening ones highlighted),
the ledger as a table, and a clear warning when the budget is exhausted.

A viewer page: ε and δ figures and budget terms only. Operators also see which run and
object each ledger entry belongs to (object names are operator information).
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Dash, dcc, html

from analytics.store.rows import BudgetStatus, LedgerEntry, TermsChange
from dashboard.auth import current_user
from dashboard.charts import plot_text
from dashboard.components import (
    chart_card,
    error_panel,
    exhausted_warning,
    fmt_epsilon,
    fmt_time,
    graph,
    loading,
    message,
    no_datasets,
    page_div,
    values_table,
)
from dashboard.exports import rows_to_csv, safe_filename
from dashboard.ids import BUDGET, pattern
from dashboard.pages import export_on_click, render_on_change
from dashboard.services import Services
from dashboard.theme import BLUE, GREEN, ORANGE, TEMPLATE_NAME, VERMILLION, install_template
from dashboard.users import NOBODY, User
from privacy.errors import PipelineError

LEDGER_ROWS = 50
TERMS_ROWS = 200
LEDGER_COLUMNS = ["id", "created_at", "state", "epsilon", "delta", "window_start",
                  "committed_at", "cancelled_at"]
#: which run and object a spend belongs to: operators only
OPERATOR_LEDGER_COLUMNS = ["run_id", "object_key"]
TERMS_COLUMNS = ["id", "dataset", "changed_at", "actor", "reason", "setting", "old", "new",
                 "weakens", "forced"]
#: the "Download CSV" of a dataset's terms history is named "<dataset>:terms"
TERMS_EXPORT = ":terms"
SETTING_LABELS = {
    "epsilon_cap": "ε cap",
    "delta_cap": "δ cap",
    "policy": "policy",
    "window": "window",
    "privacy_unit": "privacy unit",
    "max_rows_per_unit": "rows per person",
}


def layout(**_query: object) -> html.Div:
    return page_div(BUDGET, [
        html.H2("Privacy budget", className="mb-1"),
        html.P(
            "Each release spends privacy loss ε (and δ) from its dataset's budget; under zCDP "
            "accounting it spends ρ, and the ρ spent is converted to ε. The ledger "
            "records every spend; a dataset whose budget is spent releases nothing more. A "
            "dataset's budget terms (caps, policy, privacy unit, rows per person) are pinned "
            "when it is first registered; every change since is listed as a change to the "
            "guarantee.",
            className="text-muted",
        ),
        loading(BUDGET),
        dcc.Download(id=BUDGET.download),
    ])


def gauge(b: BudgetStatus) -> go.Figure:
    install_template()
    bar = VERMILLION if b.exhausted else (ORANGE if b.epsilon_spent >= 0.8 * b.epsilon_cap
                                          else GREEN)
    fig = go.Figure(go.Indicator(
        mode="gauge+number",
        value=b.epsilon_spent,
        number={"suffix": f" of {b.epsilon_cap:g}", "valueformat": ".3g"},
        title={"text": plot_text(f"ε spent ({b.policy}"
                                 + (", converted from ρ" if b.accounting == "zcdp" else "") + ")")},
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


def ledger_rows(entries: list[LedgerEntry], user: User = NOBODY) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        row: dict[str, Any] = {
            "id": e.id,
            "created_at": e.created_at.isoformat(),
            "state": e.state,
            "epsilon": e.epsilon,
            "delta": e.delta,
            "rho": e.rho,
            "window_start": e.window_start.isoformat() if e.window_start else None,
            "committed_at": e.committed_at.isoformat() if e.committed_at else None,
            "cancelled_at": e.cancelled_at.isoformat() if e.cancelled_at else None,
        }
        if user.is_operator:
            row.update(run_id=e.run_id, object_key=e.key)
        rows.append(row)
    return rows


def ledger_columns(user: User) -> list[str]:
    return LEDGER_COLUMNS + (OPERATOR_LEDGER_COLUMNS if user.is_operator else [])


def terms_rows(changes: list[TermsChange]) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id, "dataset": c.dataset, "changed_at": c.changed_at.isoformat(),
            "actor": c.actor, "reason": c.reason, "setting": c.setting, "old": c.old,
            "new": c.new, "weakens": c.weakens, "forced": c.forced,
        }
        for c in changes
    ]


def setting_label(setting: str) -> str:
    return SETTING_LABELS.get(setting, setting.replace("_", " "))


def _change_text(c: TermsChange) -> str:
    if c.old is None:
        return f"set to {c.new}"
    return f"{c.old} → {c.new}"


def _effect(c: TermsChange) -> list[Any]:
    """A change's effect on the guarantee, as badges."""
    if c.old is None:
        effect = [dbc.Badge("initial terms", color="secondary", className="me-1")]
    elif c.weakens:
        effect = [dbc.Badge("weakens the guarantee", color="light", text_color="danger",
                            className="me-1")]
    else:
        effect = [dbc.Badge("keeps or strengthens it", color="success", className="me-1")]
    return effect + ([dbc.Badge("forced", color="dark")] if c.forced else [])


def _change_row(b: BudgetStatus, c: TermsChange) -> html.Tr:
    return html.Tr([
        html.Td(fmt_time(c.changed_at), className="text-nowrap"),
        html.Td(c.actor),
        html.Td(setting_label(c.setting)),
        html.Td(_change_text(c)),
        html.Td(c.reason, className="small"),
        html.Td(_effect(c)),
    ], className="table-danger" if c.weakens else None,
        id=pattern(BUDGET.terms_change, f"{b.dataset}:{c.id}"))


def _weakened(b: BudgetStatus, weakened: list[TermsChange]) -> dbc.Alert:
    last = weakened[0]  # newest first
    return message(
        "The guarantee was weakened",
        f"{len(weakened)} change(s) to the budget terms of '{b.dataset}' weaken its "
        f"privacy guarantee; the latest: {setting_label(last.setting)} "
        f"{_change_text(last)} on {fmt_time(last.changed_at)} by {last.actor} "
        f"(reason: {last.reason}).",
        None,
        colour="danger",
        id=BUDGET.of_dataset(b.dataset).weakened,
    )


def terms_history(b: BudgetStatus, changes: list[TermsChange]) -> Any:
    """The history of the pinned budget terms, newest first: who changed what, when and
    why, as a change to the guarantee; weakening changes stand out."""
    if not changes:
        return html.P("No change to the budget terms is recorded.", className="text-muted")
    head = html.Thead(html.Tr([html.Th(h) for h in (
        "When", "Who", "Term", "Change", "Why", "Effect on the guarantee")]))
    table = dbc.Table([head, html.Tbody([_change_row(b, c) for c in changes])], hover=True,
                      responsive=True, size="sm", className="mb-0",
                      id=pattern(BUDGET.terms, b.dataset))
    weakened = [c for c in changes if c.weakens]
    return html.Div([_weakened(b, weakened), table] if weakened else [table])


def _unit_text(b: BudgetStatus) -> str:
    if b.privacy_unit and b.max_rows_per_unit is not None:
        return (f"{b.privacy_unit}: at most {b.max_rows_per_unit} row(s) per person in a file "
                "(more are dropped at random before release)")
    if b.rows_are_people:
        return "each row is a different person"
    return "not pinned yet (registered before privacy units were pinned)"


def _accounting_text(b: BudgetStatus) -> str:
    if b.accounting == "zcdp":
        return ("zero-concentrated DP (Gaussian noise): ρ adds up over releases; every ε here "
                "is OpenDP's conversion of the ρ spent, at the δ the cap leaves after the "
                "thresholds' δ")
    return "pure ε (Laplace noise): ε adds up over releases"


def _outlook(b: BudgetStatus) -> str:
    """Releases left at the current size, and when they run out at the current rate."""
    if b.releases_remaining is None:
        return "–"
    text = f"{b.releases_remaining:,} at the current size"
    if b.runs_out_on is not None and b.releases_per_day:
        text += (f"; at {b.releases_per_day:.3g} release(s) a day so far, the budget runs out "
                 f"about {b.runs_out_on.isoformat()}")
    elif b.policy == "window":
        text += " in this window (the spend resets with the next)"
    return text


def _facts(b: BudgetStatus) -> html.Dl:
    zcdp = []
    if b.accounting == "zcdp":
        zcdp = [("ρ (zCDP)", f"{fmt_epsilon(b.rho_spent)} spent, "
                 f"{fmt_epsilon(b.rho_reserved)} reserved, "
                 f"{fmt_epsilon(b.rho_per_release)} per release")]
    facts = [
        ("Accounting", _accounting_text(b)),
        *zcdp,
        ("Cap", f"ε {fmt_epsilon(b.epsilon_cap)}, δ {b.delta_cap:g}"),
        ("Spent", f"ε {fmt_epsilon(b.epsilon_spent)}, δ {b.delta_spent:g}"),
        ("Reserved by running releases",
         f"ε {fmt_epsilon(b.epsilon_reserved)}, δ {b.delta_reserved:g}"),
        ("Remaining", f"ε {fmt_epsilon(b.epsilon_remaining)}, δ {b.delta_remaining:g}"),
        ("Per release", f"ε {fmt_epsilon(b.epsilon_per_release)}, δ {b.delta_per_release:g}"
                        + (" (what the next release adds to the converted total)"
                           if b.accounting == "zcdp" else "")),
        ("Releases remaining", _outlook(b)),
        ("Policy", b.policy + (f" (window: {b.window}, since {fmt_time(b.window_start)})"
                               if b.window else " (spends add up forever)")),
        ("Privacy unit", _unit_text(b)),
    ]
    return html.Dl([item for k, v in facts
                    for item in (html.Dt(k, className="small text-muted"), html.Dd(v))])


def _ledger_table(entries: list[LedgerEntry], user: User) -> Any:
    """The ledger; which run and object each entry belongs to for operators only. Under
    zCDP each entry's ρ, and the ε it alone converts to at the δ cap."""
    if not entries:
        return html.P("No ledger entries yet.", className="text-muted")
    operator = user.is_operator
    rho = any(e.rho is not None for e in entries)
    return values_table(
        ["When", "State", *(["ρ", "ε alone"] if rho else ["ε"]), "δ"]
        + (["Run", "Object"] if operator else []),
        [[fmt_time(e.created_at), e.state, *([fmt_epsilon(e.rho)] if rho else []),
          fmt_epsilon(e.epsilon), f"{e.delta:g}", *([e.run_id, e.key] if operator else [])]
         for e in entries],
    )


def dataset_budget(b: BudgetStatus, entries: list[LedgerEntry],
                   changes: list[TermsChange] | None = None, user: User = NOBODY) -> html.Div:
    body = [
        dbc.Row([
            dbc.Col(graph(gauge(b), pattern(BUDGET.gauge, b.dataset)), md=5),
            dbc.Col(_facts(b), md=7),
        ]),
        html.H6(f"Ledger (latest {LEDGER_ROWS})", className="mt-2"),
        _ledger_table(entries, user),
    ]
    parts: list[Any] = [html.H4(b.dataset, className="mt-2")]
    if b.exhausted:
        parts.append(exhausted_warning(b, BUDGET.of_dataset(b.dataset).exhausted))
    parts.append(chart_card(BUDGET, b.dataset, "Budget and ledger", body))
    parts.append(chart_card(BUDGET, b.dataset + TERMS_EXPORT, "Changes to the guarantee",
                            [terms_history(b, changes or [])]))
    return html.Div(parts)


def render(services: Services, user: User = NOBODY) -> Any:
    try:
        store = services.store()
        names = [d.name for d in store.datasets()]
        if not names:
            return no_datasets(BUDGET)
        return [dataset_budget(store.budget(n), store.ledger(n, limit=LEDGER_ROWS),
                               store.terms_changes(n, limit=TERMS_ROWS), user)
                for n in names]
    except PipelineError as exc:
        return error_panel(exc, BUDGET)


def export_csv(services: Services, name: str, user: User) -> dict[str, Any]:
    """The "Download CSV" of a dataset's ledger (``<dataset>``) or of its budget-terms
    history (``<dataset>:terms``)."""
    store = services.store()
    if name.endswith(TERMS_EXPORT):
        dataset = name.removesuffix(TERMS_EXPORT)
        text = rows_to_csv(TERMS_COLUMNS, terms_rows(store.terms_changes(dataset,
                                                                        limit=100_000)))
        return dcc.send_string(text, safe_filename(dataset, "budget-terms"), type="text/csv")
    entries = store.ledger(name, limit=100_000)
    text = rows_to_csv(ledger_columns(user), ledger_rows(entries, user))
    return dcc.send_string(text, safe_filename(name, "ledger"), type="text/csv")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path="/budget", name="Privacy budget", title="Privacy budget",
                       order=2, layout=layout)

    render_on_change(app, BUDGET, lambda: render(services, current_user()))

    export_on_click(app, BUDGET, lambda name: export_csv(services, name, current_user()))
