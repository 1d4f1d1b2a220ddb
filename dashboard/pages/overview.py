"""Overview: every dataset with its last release, the DP row and people counts of its latest
summary release (with their intervals and noise-impact badges), headline insights, the
warnings of its latest quality release, and budget status.

A viewer page: no exact count (rows processed, runs) appears here.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html

from analytics.store.rows import BudgetStatus, DatasetSummary, PublishedValueRow, ReleaseInfo
from analytics.vocabulary import Kind, Metric
from dashboard.components import (
    error_panel,
    exhausted_badge,
    fmt_epsilon,
    fmt_interval,
    fmt_number,
    fmt_time,
    impact_badge,
    loading,
    no_datasets,
    page_div,
)
from dashboard.ids import OVERVIEW, pattern
from dashboard.pages import render_on_change
from dashboard.services import Services
from privacy.errors import PipelineError

HEADLINES = 3
#: which analyses' sentences make the best headlines, best first
HEADLINE_ORDER = (Kind.COMPARISON, Kind.SUMMARY, Kind.TREND, Kind.CORRELATION, Kind.FORECAST,
                  Kind.DISTRIBUTION)


def layout(**_query: object) -> html.Div:
    return page_div(OVERVIEW, [
        html.H2("Overview", className="mb-1"),
        html.P(
            "Datasets published so far, their latest insights and how much of their privacy "
            "budget is left.",
            className="text-muted",
        ),
        loading(OVERVIEW),
    ])


def budget_bar(d: DatasetSummary) -> dbc.Progress:
    share = 100.0 * d.epsilon_spent / d.epsilon_cap if d.epsilon_cap > 0 else 100.0
    colour = "danger" if d.exhausted else ("warning" if share >= 80 else "success")
    return dbc.Progress(value=min(share, 100.0), color=colour, className="mb-1",
                        style={"height": "8px"})


def summary_counts(releases: list[ReleaseInfo]) -> dict[str, PublishedValueRow]:
    """The published ``count`` and ``units`` (ungrouped) of the latest summary release."""
    latest = next((r for r in releases if r.analysis == Kind.SUMMARY), None)  # newest first
    if latest is None:
        return {}
    return {v.metric: v for v in latest.values
            if v.metric in (Metric.COUNT, Metric.UNITS) and not v.group and v.column is None}


def _dp_count(label: str, v: PublishedValueRow | None, name: str) -> dbc.Col:
    return dbc.Col([
        html.Div(label, className="small text-muted"),
        html.Div([fmt_number(v.value), " ", impact_badge(v)] if v else "–"),
        html.Div(fmt_interval(v.lower, v.upper) if v else "", className="small text-secondary"),
    ], id=pattern(OVERVIEW.count, name))


def quality_warnings(releases: list[ReleaseInfo]) -> list[str]:
    """The sentences of the latest quality release: what may bias the numbers."""
    latest = next((r for r in releases if r.analysis == Kind.QUALITY), None)  # newest first
    return list(latest.insights) if latest else []


def _insights(d: DatasetSummary, recent: list[ReleaseInfo]) -> list[Any]:
    """The headline insights, then the warnings of the quality release."""
    lines = headlines(recent)
    out: list[Any] = [
        html.H6("Headline insights", className="mt-3"),
        html.Ul([html.Li(text) for text in lines] if lines else
                [html.Li("No insights yet.", className="text-muted")], className="mb-0"),
    ]
    warnings = quality_warnings(recent)
    if warnings:
        out += [html.H6("What may bias these numbers", className="mt-3 text-warning"),
                html.Ul([html.Li(w) for w in warnings], className="mb-0 small",
                        id=pattern(OVERVIEW.quality_warnings, d.name))]
    return out


def dataset_card(d: DatasetSummary, recent: list[ReleaseInfo],
                 budget: BudgetStatus | None = None) -> dbc.Card:
    """A dataset from its ``recent`` releases (newest first); ``budget``, read when its
    budget is exhausted, says whether ε or δ ran out."""
    counts = summary_counts(recent)
    return dbc.Card([
        dbc.CardHeader([
            dcc.Link(d.name, href=f"/dataset/{d.name}", className="fw-semibold fs-5",
                     id=pattern(OVERVIEW.dataset_link, d.name)),
            exhausted_badge(budget) if budget is not None and budget.exhausted else None,
        ]),
        dbc.CardBody([
            dbc.Row([
                dbc.Col([html.Div("Last release", className="small text-muted"),
                         html.Div(fmt_time(d.last_release_at))]),
                _dp_count("Rows (DP)", counts.get(Metric.COUNT), f"{d.name}:rows"),
                _dp_count("People (DP)", counts.get(Metric.UNITS), f"{d.name}:people"),
            ], className="mb-3"),
            html.Div(
                f"Privacy budget: ε {fmt_epsilon(d.epsilon_spent)} spent of "
                f"{fmt_epsilon(d.epsilon_cap)} ({d.policy})",
                className="small text-muted",
            ),
            budget_bar(d),
            *_insights(d, recent),
        ]),
    ], className="h-100 shadow-sm")


def headlines(releases: list[ReleaseInfo]) -> list[str]:
    """Up to HEADLINES sentences from the latest release of each analysis, best kinds first."""
    latest: dict[str, ReleaseInfo] = {}
    for r in releases:  # newest first
        latest.setdefault(r.name, r)
    # the quality release's warnings have a place of their own
    ranked = sorted((r for r in latest.values() if r.analysis != Kind.QUALITY), key=lambda r: (
        HEADLINE_ORDER.index(r.analysis) if r.analysis in HEADLINE_ORDER else 99, r.name))
    return [text for r in ranked for text in r.insights][:HEADLINES]


def render(services: Services) -> Any:
    try:
        store = services.store()
        summaries = store.datasets()
        if not summaries:
            return no_datasets(OVERVIEW)
        cards = []
        for d in summaries:
            recent = store.releases(d.name, limit=60)
            shown = store.default_release_set(d.name)
            if shown is not None:  # as the dataset page: its latest dataset release first
                recent = [r for r in recent if r.ledger_id == shown] or recent
            budget = store.budget(d.name) if d.exhausted else None
            cards.append(dbc.Col(dataset_card(d, recent, budget), md=6, className="mb-4"))
    except PipelineError as exc:
        return error_panel(exc, OVERVIEW)
    return dbc.Row(cards)


def register(app: Dash, services: Services) -> None:
    """Register this page and its callbacks on ``app`` (called by create_app)."""
    dash.register_page(__name__, path="/", name="Overview", title="Overview", order=0,
                       layout=layout)

    render_on_change(app, OVERVIEW, lambda: render(services))
