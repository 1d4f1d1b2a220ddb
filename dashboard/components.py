"""Building blocks shared by the pages: the one error component, empty states, the
audience footer and operator banner, the exhausted-budget warning, KPI cards, chart cards
with their "Download CSV" button, and number formatting. Components take the ids of the
page they are on (``dashboard.ids``).

Text that comes from data (group keys, column names, dataset names) is always passed to
Dash components as plain strings, which React renders as text, never as HTML; nothing here
uses ``dangerously_allow_html`` or Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from analytics.store.rows import BudgetStatus
from dashboard.ids import Page, pattern
from dashboard.noise import Impact, Valued, interval_kind, interval_text, noise_impact
from dashboard.users import RoleRefused, User
from privacy.errors import BudgetExhausted, InvalidKey, PipelineError, StorageUnavailable

# ----------------------------------------------------------------------------- formatting


def fmt_number(value: float | None, digits: int = 3) -> str:
    """A short human number: 1,234 / 5.21 / 0.0123 / 1.2e-06."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 1e-3:
        return f"{value:.{digits}g}"
    return f"{value:.2g}"


def fmt_interval(lower: float | None, upper: float | None,
                 fmt: Callable[[float], str] = fmt_number) -> str:
    """"95% CI 1.1 to 1.3" (empty without an interval); ``fmt`` formats the ends."""
    if lower is None or upper is None:
        return ""
    return f"95% CI {fmt(lower)} to {fmt(upper)}"


def fmt_value_interval(v: Valued) -> str:
    """What a value's lower/upper are, in words: a 95% interval of the noise (simultaneous
    for differences and ratios), a forecast's prediction interval, a quantile's rough
    range."""
    if v.lower is None or v.upper is None:
        return ""
    return interval_text(v.metric, fmt_number(v.lower), fmt_number(v.upper))


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.strftime("%Y-%m-%d %H:%M UTC")


def fmt_epsilon(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


# ------------------------------------------------------------------------ states and errors


def message(title: str, body: str, todo: str | None = None, colour: str = "info",
            id: str | None = None) -> dbc.Alert:
    """An alert saying what happened and what to do next."""
    children: list[Any] = [
        html.H5(title, className="alert-heading"),
        html.P(body, className="mb-1"),
    ]
    if todo:
        children.append(html.P(["What to do: ", todo], className="mb-0 small"))
    kwargs = {"id": id} if id else {}
    return dbc.Alert(children, color=colour, className="my-3", **kwargs)


def error_panel(exc: PipelineError, page: Page) -> dbc.Alert:
    """The dashboard's one translation of an error for people: what happened, what to do.

    Messages of the platform's errors carry no raw values (privacy/errors.py), so they
    can be shown; anything else never reaches this function (no catch-all handlers).
    """
    if isinstance(exc, StorageUnavailable):
        return message(
            "The aggregate store cannot be reached",
            str(exc),
            "start the service ('privacy-analytics up') or check PA_DASHBOARD_STORE_URL; "
            "this page retries on its own.",
            colour="danger",
            id=page.error,
        )
    if isinstance(exc, BudgetExhausted):
        return message("Privacy budget exhausted", str(exc), None, "warning", page.error)
    if isinstance(exc, InvalidKey | RoleRefused):
        return message("Not allowed", str(exc), None, "warning", page.error)
    return message("Something went wrong", str(exc), None, "danger", page.error)


# --------------------------------------------------------------------- the two audiences

#: the claim of every page a viewer can open; it must stay true of everything on them
DP_CLAIM = (
    "Every figure on this page is a differentially private release or computed from one "
    "(shown with the 95% interval of its noise, or with a rough range or prediction "
    "interval where that is all it has), or a privacy-budget figure (ε, δ and the "
    "dataset's pinned budget terms). No exact count and no row of data reaches this page."
)
#: the footer of the operator pages instead
EXACT_CLAIM = (
    "Operator information: the counts on this page are exact, not differentially private. "
    "They are for the people who run the pipeline; do not pass them on to viewers."
)


def footer(page: Page, exact: bool = False, claim: str | None = None) -> html.Footer:
    """The page's footer: the DP claim on viewer pages, the exact-counts notice on operator
    pages, or the page's own ``claim`` (the planner's: predictions only)."""
    return html.Footer(
        html.Div(claim or (EXACT_CLAIM if exact else DP_CLAIM), className="small text-muted py-3"),
        className="border-top mt-4",
        id=page.footer,
    )


def page_div(page: Page, children: list[Any], exact: bool = False,
             claim: str | None = None) -> html.Div:
    """A page's layout: ``children``, then its footer."""
    return html.Div([*children, footer(page, exact, claim)], id=page.root)


def loading(page: Page) -> dcc.Loading:
    """Where a page's render callback puts its content."""
    return dcc.Loading(html.Div(id=page.content), type="dot", delay_show=400)


def operator_banner(page: Page) -> dbc.Alert:
    return dbc.Alert([
        html.Strong("Operator information. "),
        "The counts on this page are exact (rows in and out, suppressed rows, rejection and "
        "quarantine reasons): they are not differentially private and viewers never see them. "
        "Share only the releases on the viewer pages.",
    ], color="warning", className="py-2 small", id=page.operator_banner)


def not_available(page: Page, user: User) -> dbc.Alert:
    """What a viewer gets instead of an operator page or an operator callback's data."""
    return message(
        "Not available to your role",
        f"This page holds exact operator information; you are signed in as {user.describe()}.",
        "viewers see the differentially private releases on the Overview, dataset and "
        "Privacy budget pages; ask an operator if you need more.",
        colour="warning",
        id=page.forbidden,
    )


def no_datasets(page: Page) -> dbc.Alert:
    return message(
        "No datasets yet",
        "Nothing has been published to the aggregate store so far.",
        "add a contract for your dataset (contracts/<dataset>.yaml) and drop a file into "
        "landing/<dataset>/ (operators can use the Upload page); its DP aggregates appear "
        "here once the pipeline has processed it.",
        id=page.empty,
    )


# ----------------------------------------------------------------------- the budget

_TOLERANCE = 1e-9  # as the store's spend test (privacy.budget)


def ran_out(b: BudgetStatus) -> list[str]:
    """Which of ε and δ cannot pay another release: spent, reserved and one more release
    over its cap. ``b.exhausted`` is the store's verdict; this only says which."""
    sides = (("ε", b.epsilon_spent + b.epsilon_reserved + b.epsilon_per_release, b.epsilon_cap),
             ("δ", b.delta_spent + b.delta_reserved + b.delta_per_release, b.delta_cap))
    return [name for name, needed, cap in sides if needed > cap * (1 + _TOLERANCE)]


def _spend_text(name: str, spent: float, reserved: float, cap: float, per: float) -> str:
    held = f" and {reserved:.3g} reserved" if reserved > 0 else ""
    return f"{name} {spent:.3g} spent{held} of {cap:.3g}, {per:.3g} per release"


def _ran_out_text(b: BudgetStatus) -> str:
    out = ran_out(b)
    facts = {
        "ε": _spend_text("ε", b.epsilon_spent, b.epsilon_reserved, b.epsilon_cap,
                         b.epsilon_per_release),
        "δ": _spend_text("δ", b.delta_spent, b.delta_reserved, b.delta_cap,
                         b.delta_per_release),
    }
    said = "; ".join(facts[n] for n in out)
    if len(out) == 2:
        return f"Neither its ε nor its δ can pay for another release ({said})"
    if out:
        return f"Its {out[0]} cannot pay for another release ({said})"
    return "It cannot pay for another release"


def exhausted_warning(b: BudgetStatus, alert_id: str) -> dbc.Alert:
    """Why nothing more is released, saying whether ε or δ (or both) ran out."""
    # the command's flag and the contract's field of each cap that ran out
    caps = [("--epsilon-cap", "epsilon_cap") if n == "ε" else ("--delta-cap", "delta")
            for n in ran_out(b) or ["ε"]]
    flags = " ".join(f"{flag} X" for flag, _ in caps)
    fields = " and ".join(f"budget.{field}" for _, field in caps)
    wait = f", or wait for the next {b.window} (policy 'window')" if b.policy == "window" else ""
    return message(
        f"The privacy budget of '{b.dataset}' is exhausted",
        "Every release spends part of a fixed privacy budget (ε and δ). "
        f"{_ran_out_text(b)}, so new files are still validated and masked but nothing more "
        "is released: the numbers shown stay as they are.",
        "this is the budget working as intended. Raise the cap only if your privacy policy "
        f"allows it: privacy-analytics budget set {b.dataset} {flags} --force --reason "
        f"\"...\", then {fields} in the dataset's contract to match{wait}.",
        colour="warning",
        id=alert_id,
    )


def exhausted_badge(b: BudgetStatus) -> dbc.Badge:
    """The overview's badge of an exhausted budget: which of ε and δ ran out."""
    which = " and ".join(ran_out(b))
    return dbc.Badge(f"{which} budget exhausted" if which else "budget exhausted",
                     color="danger", className="ms-2")


# ----------------------------------------------------------------------------- cards


def impact_badge(v: Valued, impact: Impact | None = None) -> dbc.Badge:
    """The noise-impact badge of a value: low / medium / high, or a label (rough guide,
    forecast) for values without a 95% interval; the reason is its tooltip."""
    impact = impact or noise_impact(v)
    return dbc.Badge(impact.text, color=impact.colour, pill=True, title=impact.why,
                     className=f"noise-impact noise-{impact.level.replace(' ', '-')} "
                               "fw-normal align-middle")


def with_badge(text: str, v: Valued) -> list[Any]:
    """A table cell: the value's text followed by its noise-impact badge."""
    return [text, " ", impact_badge(v)]


def kpi_card(label: str, v: Valued, notes: list[Any] | None = None,
             note_id: dict[str, str] | str | None = None) -> dbc.Card:
    """A KPI: the value, its interval, its noise-impact badge and, under them, the notes
    that disclose what shaped it (quality shares)."""
    body: list[Any] = [
        html.Div(label, className="text-muted small text-truncate", title=label),
        html.Div([html.Span(fmt_number(v.value), className="fs-3 fw-semibold kpi-value"),
                  " ", impact_badge(v)]),
        html.Div(fmt_value_interval(v), className="small text-secondary",
                 title=interval_kind(v.metric)),
    ]
    if notes:
        kwargs = {"id": note_id} if note_id else {}
        body.append(html.Div(notes, className="small text-muted mt-1 kpi-disclosure",
                             **kwargs))
    return dbc.Card(dbc.CardBody(body), className="h-100 shadow-sm")


def export_button(page: Page, name: str) -> dbc.Button:
    return dbc.Button(
        "Download CSV",
        id=pattern(page.export, name),
        size="sm",
        color="secondary",
        outline=True,
        className="float-end",
    )


def chart_card(page: Page, name: str, title: str, body: list[Any],
               sentences: list[str] | None = None) -> dbc.Card:
    """A titled card with its "Download CSV" button; the insight sentences, if any, lead."""
    header = dbc.CardHeader(
        [html.Span(title, className="fw-semibold"), export_button(page, name)],
        className="clearfix",
    )
    lead: list[Any] = []
    if sentences:
        lead = [html.Ul([html.Li(s) for s in sentences], className="insights lead fs-6 mb-2",
                        id=pattern(page.insights, name))]
    return dbc.Card([header, dbc.CardBody(lead + body)], className="mb-4 shadow-sm")


def graph(fig: Any, graph_id: dict[str, str] | str) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        figure=fig,
        config={"displayModeBar": False, "responsive": True},
        style={"height": "340px"},
    )


def _cell(cell: Any) -> Any:
    """Components built here (badges) stay components; everything else becomes text."""
    if isinstance(cell, Component):
        return cell
    if isinstance(cell, list) and all(isinstance(c, Component | str) for c in cell):
        return cell
    return str(cell)


def values_table(columns: list[str], rows: list[list[Any]], table_id: str | None = None,
                 small: bool = True) -> dbc.Table:
    """A plain table; every cell is rendered as text (a string, or a list of strings and
    badges built by this module)."""
    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = html.Tbody([html.Tr([html.Td(_cell(cell)) for cell in row]) for row in rows])
    kwargs = {"id": table_id} if table_id else {}
    return dbc.Table([head, body], bordered=False, hover=True, responsive=True,
                     size="sm" if small else None, className="mb-0", **kwargs)
