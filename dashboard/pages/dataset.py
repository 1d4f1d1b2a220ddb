"""Dataset: KPI cards with intervals, comparisons with error bars and their sentences,
histograms, trends with the forecast band, a correlation heatmap, the quality shares next to
the numbers they shape (and its warnings at the top), and how to read them.

Every number comes from ``latest_values`` (the latest release of each analysis) and the
insights stored with those releases; the page computes nothing from data. Every number
carries a noise-impact badge (``dashboard.noise``). A viewer page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, State, dcc, html
from dash.exceptions import PreventUpdate

from analytics.store.rows import BudgetStatus, ReleaseInfo, ValueRow
from analytics.vocabulary import Kind
from dashboard.auth import current_user
from dashboard.charts import EXPORT_COLUMNS, correlation_pair, export_rows
from dashboard.components import (
    error_panel,
    exhausted_warning,
    fmt_epsilon,
    fmt_time,
    loading,
    message,
    page_div,
)
from dashboard.disclosures import Disclosures, columns_of, quality_warnings
from dashboard.exports import rows_to_csv, safe_filename
from dashboard.ids import DATASET
from dashboard.pages import export_on_click, render_on_change
from dashboard.reading import how_to_read
from dashboard.sections import sections, wordless_sections
from dashboard.services import Services
from dashboard.users import NOBODY, User
from privacy.errors import PipelineError

RELEASES_FOR_INSIGHTS = 200


def layout(name: str | None = None, **_query: object) -> html.Div:
    return page_div(DATASET, [
        dcc.Store(id=DATASET.dataset, data=name),
        loading(DATASET),
        dcc.Download(id=DATASET.download),
    ])


def header(name: str, budget: BudgetStatus, values: Sequence[ValueRow]) -> html.Div:
    last = max((v.created_at for v in values), default=None)
    return html.Div([
        html.H2(name, className="mb-1", id=DATASET.title),
        html.P(
            f"Latest release {fmt_time(last)} · privacy budget ε "
            f"{fmt_epsilon(budget.epsilon_spent)} spent of {fmt_epsilon(budget.epsilon_cap)} "
            f"({budget.policy})",
            className="text-muted",
        ),
    ])


@dataclass(frozen=True)
class _Loaded:
    values: list[ValueRow]
    budget: BudgetStatus
    recent: list[ReleaseInfo]
    sentences: dict[int, list[str]]
    disc: Disclosures


def _load(services: Services, name: str) -> _Loaded:
    store = services.store()
    values = store.latest_values(name)
    budget = store.budget(name)
    recent = store.releases(name, limit=RELEASES_FOR_INSIGHTS)
    sentences = {r.id: list(r.insights) for r in recent}
    rows = budget.max_rows_per_unit if budget.privacy_unit is not None else None
    return _Loaded(values, budget, recent, sentences, Disclosures.of(values, sentences, rows))


def _nothing_yet(name: str, user: User) -> dbc.Alert:
    todo = ("wait for its first file to be processed, or look at the Pipeline runs page "
            "for a rejected file." if user.is_operator else
            "wait for its first file to be processed; if nothing appears, ask an operator.")
    return message("Nothing released yet",
                   f"Dataset '{name}' is registered but has no published values.", todo,
                   id=DATASET.empty)


def render(services: Services, name: str | None, user: User = NOBODY) -> Any:
    if not name:
        return message("No dataset chosen", "This page shows one dataset.",
                       "pick one on the Overview page.", id=DATASET.empty)
    try:
        data = _load(services, name)
    except PipelineError as exc:
        return error_panel(exc, DATASET)
    parts: list[Any] = [header(name, data.budget, data.values)]
    if data.budget.exhausted:
        parts.append(exhausted_warning(data.budget, DATASET.exhausted))
    warnings = quality_warnings(data.disc)
    if warnings is not None:
        parts.append(warnings)
    parts.append(how_to_read(data.budget))
    if not data.values:
        return [*parts, _nothing_yet(name, user)]
    parts.extend(sections(data.values, data.sentences, data.disc))
    parts.extend(wordless_sections(data.recent, data.values))
    return parts


# ----------------------------------------------------------------------------- export


def export_values(data: _Loaded, names: set[str]) -> tuple[list[ValueRow],
                                                           list[tuple[ValueRow, str]]]:
    """A card's export: the values of its releases, the quality shares the card shows
    next to them, then its sentences and the quality warnings about its numbers."""
    own = [v for v in data.values if v.release_name in names]
    disc = data.disc
    if Kind.QUALITY in names:
        shares, warnings = list(disc.shares), list(disc.warnings)
        own = [v for v in own if v.analysis != Kind.QUALITY]
    else:
        columns = columns_of(own) + [m for v in own if v.analysis == Kind.CORRELATION
                                     for m in correlation_pair(v)]
        counts = any(v.analysis == Kind.SUMMARY for v in own)
        shares = disc.relevant(columns, counts=counts)
        warnings = disc.warnings_for(columns, counts=counts)
    notes: list[tuple[ValueRow, str]] = []
    for v in dict((v.release_id, v) for v in own).values():
        notes += [(v, text) for text in data.sentences.get(v.release_id, [])]
    if shares or disc.shares:
        anchor = (shares or list(disc.shares))[0]
        notes += [(anchor, text) for text in warnings]
    return own + shares, notes


def export_csv(services: Services, dataset: str, key: str) -> dict[str, Any]:
    """The "Download CSV" of one card (``<release>[|<release>][#<series>]``): the published
    values behind it, neutralised."""
    releases = key.split("#", 1)[0].split("|")
    values, notes = export_values(_load(services, dataset), set(releases))
    text = rows_to_csv(EXPORT_COLUMNS, export_rows(values, notes))
    return dcc.send_string(text, safe_filename(dataset, releases[0]), type="text/csv")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path_template="/dataset/<name>", name="Dataset",
                       title="Dataset", order=1, layout=layout)

    render_on_change(app, DATASET, lambda name: render(services, name, current_user()),
                     State(DATASET.dataset, "data"))

    def _send(key: str, name: str | None) -> dict[str, Any]:
        if not name:
            raise PreventUpdate
        return export_csv(services, name, key)

    export_on_click(app, DATASET, _send, State(DATASET.dataset, "data"))
