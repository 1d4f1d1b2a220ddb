"""Dataset: KPI cards with intervals, comparisons with error bars and their sentences,
histograms, trends with the forecast band, a correlation heatmap, the quality shares next to
the numbers they shape (and its warnings at the top), and how to read them.

Every number comes from one release set: the latest dataset release by default (over all
the dataset's files so far), or the one the selector picks, or, for a dataset without
dataset releases, ``latest_values`` (the latest release of each analysis); and from the
insights stored with those releases. A history panel follows the headline values over the
releases (``dashboard.history``). The page computes nothing from data. Every number
carries a noise-impact badge (``dashboard.noise``). A viewer page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from analytics.store.rows import BudgetStatus, ReleaseInfo, ReleaseSetInfo, ValueRow
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
from dashboard.history import (
    HISTORY_SETS,
    chosen_set,
    history_panel,
    history_sets,
    selector,
    shown_label,
)
from dashboard.ids import DATASET, SHELL
from dashboard.pages import export_on_click
from dashboard.reading import how_to_read
from dashboard.sections import sections, wordless_sections
from dashboard.services import Services
from dashboard.users import NOBODY, User
from privacy.errors import PipelineError

RELEASES_FOR_INSIGHTS = 200


def layout(name: str | None = None, **_query: object) -> html.Div:
    return page_div(DATASET, [
        dcc.Store(id=DATASET.dataset, data=name),
        dcc.Store(id=DATASET.chosen, data=None),
        loading(DATASET),
        dcc.Download(id=DATASET.download),
    ])


def header(name: str, budget: BudgetStatus, values: Sequence[ValueRow],
           shown: str | None = None) -> html.Div:
    last = max((v.created_at for v in values), default=None)
    what = f"Showing the {shown}" if shown else f"Latest release {fmt_time(last)}"
    return html.Div([
        html.H2(name, className="mb-1", id=DATASET.title),
        html.P(
            f"{what} · privacy budget ε "
            f"{fmt_epsilon(budget.epsilon_spent)} spent of {fmt_epsilon(budget.epsilon_cap)} "
            f"({budget.policy})",
            className="text-muted", id=DATASET.shown,
        ),
    ])


@dataclass(frozen=True)
class _Loaded:
    values: list[ValueRow]
    budget: BudgetStatus
    recent: list[ReleaseInfo]
    sentences: dict[int, list[str]]
    disc: Disclosures
    sets: list[ReleaseSetInfo]
    #: the release set shown (None: each analysis's latest release)
    shown: int | None
    history: list[ValueRow]


def _rows_per_person(budget: BudgetStatus, sets: Sequence[ReleaseSetInfo],
                     shown: int | None) -> int | None:
    """The public bound on one person's rows the shown values were released with."""
    if budget.privacy_unit is None:
        return None
    for s in sets:
        if s.ledger_id == shown and s.max_rows_per_unit is not None:
            return s.max_rows_per_unit
    return budget.max_rows_per_unit


def _load(services: Services, name: str, chosen: str | int | None = None) -> _Loaded:
    store = services.store()
    sets = store.release_sets(name)
    shown = chosen_set(sets, store.default_release_set(name), chosen)
    values = store.latest_values(name, shown)
    budget = store.budget(name)
    recent = store.releases(name, limit=RELEASES_FOR_INSIGHTS)
    if shown is not None:  # the chosen set's own releases and sentences
        recent = [r for r in recent if r.ledger_id == shown] or recent
    sentences = {r.id: list(r.insights) for r in recent}
    rows = _rows_per_person(budget, sets, shown)
    followed = [s.ledger_id for s in history_sets(sets)][-HISTORY_SETS:]
    history = store.values_of(name, followed, analysis="summary") if len(followed) > 1 else []
    return _Loaded(values, budget, recent, sentences, Disclosures.of(values, sentences, rows),
                   sets, shown, history)


def _nothing_yet(name: str, user: User) -> dbc.Alert:
    todo = ("wait for its first file to be processed, or look at the Pipeline runs page "
            "for a rejected file." if user.is_operator else
            "wait for its first file to be processed; if nothing appears, ask an operator.")
    return message("Nothing released yet",
                   f"Dataset '{name}' is registered but has no published values.", todo,
                   id=DATASET.empty)


def render(services: Services, name: str | None, user: User = NOBODY,
           chosen: str | int | None = None) -> Any:
    if not name:
        return message("No dataset chosen", "This page shows one dataset.",
                       "pick one on the Overview page.", id=DATASET.empty)
    try:
        data = _load(services, name, chosen)
    except PipelineError as exc:
        return error_panel(exc, DATASET)
    shown = shown_label(data.sets, data.shown) if data.sets else None
    parts: list[Any] = [header(name, data.budget, data.values, shown)]
    pick = selector(data.sets, data.shown)
    if pick is not None:
        parts.append(pick)
    if data.budget.exhausted:
        parts.append(exhausted_warning(data.budget, DATASET.exhausted))
    warnings = quality_warnings(data.disc)
    if warnings is not None:
        parts.append(warnings)
    parts.append(how_to_read(data.budget, _rows_per_person(data.budget, data.sets, data.shown)))
    if not data.values:
        return [*parts, _nothing_yet(name, user)]
    parts.extend(sections(data.values, data.sentences, data.disc))
    parts.extend(wordless_sections(data.recent, data.values))
    history = history_panel(data.sets, data.history)
    if history is not None:
        parts.append(history)
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


def export_csv(services: Services, dataset: str, key: str,
               chosen: str | int | None = None) -> dict[str, Any]:
    """The "Download CSV" of one card (``<release>[|<release>][#<series>]``) of the release
    set shown: the published values behind it, neutralised."""
    releases = key.split("#", 1)[0].split("|")
    values, notes = export_values(_load(services, dataset, chosen), set(releases))
    text = rows_to_csv(EXPORT_COLUMNS, export_rows(values, notes))
    return dcc.send_string(text, safe_filename(dataset, releases[0]), type="text/csv")


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path_template="/dataset/<name>", name="Dataset",
                       title="Dataset", order=1, layout=layout)

    @app.callback(Output(DATASET.content, "children"), Input(SHELL.marker, "data"),
                  Input(DATASET.chosen, "data"), State(DATASET.dataset, "data"))
    def _render(_marker: str | None, chosen: str | None, name: str | None) -> Any:
        return render(services, name, current_user(), chosen)

    @app.callback(Output(DATASET.chosen, "data"), Input(DATASET.release_set, "value"),
                  State(DATASET.chosen, "data"), prevent_initial_call=True)
    def _choose(value: str | None, before: str | None) -> str:
        if value is None or value == before:
            raise PreventUpdate
        return value

    def _send(key: str, name: str | None, chosen: str | None) -> dict[str, Any]:
        if not name:
            raise PreventUpdate
        return export_csv(services, name, key, chosen)

    export_on_click(app, DATASET, _send, State(DATASET.dataset, "data"),
                    State(DATASET.chosen, "data"))
