"""The quality release's shares, worded for the numbers they shape.

The producer publishes one release of kind ``quality`` (name ``quality``): per measure the
share of values missing and the shares of present values below / above the contract's
bounds (which count as the bound), and for a dataset with a privacy unit the share of
people with more rows than the per-person bound and (a lower bound) the share of rows that
bound left out. Its sentences are the warnings: they say when a share is large enough to
bias a number. These functions pick the shares that belong next to a measure or next to the
counts and word them ("12% missing · 13% above the upper bound (count as 200)"); they
compute nothing from data. The components below show them: the warnings at the top of a
page, the notes under the numbers (each share with its noise-impact badge, its interval in
the tooltip), the Data quality table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from analytics.queries import ValueRow
from dashboard.charts import metric_label
from dashboard.components import fmt_number, impact_badge, values_table, with_badge
from dashboard.noise import SHARE_METRICS

QUALITY = "quality"
#: the release of bounds estimated under DP (measures with ``bounds: auto``)
BOUNDS = "bounds"
BOUND_METRICS = {"lower": "clamp_lower", "upper": "clamp_upper"}
MEASURE_SHARES = ("missing_share", "clamped_low_share", "clamped_high_share")
COUNT_SHARES = ("truncated_share", "over_bound_share")
#: the contract's bounds are not in the store; the producer's warning names a bound it
#: speaks of ("... above the contract's upper bound of 200 and count as 200 ...")
_BOUND = re.compile(
    r"of (?P<name>.+?) values were (?:below|above) the contract's (?P<side>lower|upper) "
    r"bound of (?P<bound>\S+) and count as"
)
#: the producer's warnings name a measure as "<name> values" ("About 9% of salary values")
_MEASURE = re.compile(r"\bof (?P<name>.+?) values (?:are|were)\b")


def label(column: str) -> str:
    """A column as the producer's sentences name it (``project_completion_days`` ->
    ``project completion days``)."""
    return column.replace("_", " ").strip()


def fmt_share(x: float) -> str:
    """A share as a whole percentage ("13%"), "under 1%" for a small positive one."""
    if x <= 0:
        return "0%"
    if x < 0.01:
        return "under 1%"
    return f"{100 * x:.0f}%"


def fmt_share_interval(lower: float | None, upper: float | None) -> str:
    if lower is None or upper is None:
        return ""
    return f"95% CI {100 * lower:.0f}% to {100 * upper:.0f}%"


@dataclass(frozen=True)
class Disclosures:
    """The latest quality release of a dataset: its shares and its warnings."""

    shares: tuple[ValueRow, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the dataset's pinned rows per person (None: unknown, or rows are people)
    max_rows: int | None = None
    #: bounds estimated under DP (``clamp_lower``/``clamp_upper`` of the bounds release)
    bounds: tuple[ValueRow, ...] = ()
    #: the bounds release's sentences
    bounds_said: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[ValueRow], sentences: dict[int, list[str]],
           max_rows: int | None = None) -> Disclosures:
        values = list(values)
        shares = tuple(v for v in values
                       if v.analysis == QUALITY and v.metric in SHARE_METRICS)
        said = sentences.get(shares[0].release_id, []) if shares else []
        bounds = tuple(v for v in values
                       if v.analysis == BOUNDS and v.metric in BOUND_METRICS.values())
        bounds_said = sentences.get(bounds[0].release_id, []) if bounds else []
        return cls(shares, tuple(said), max_rows, bounds, tuple(bounds_said))

    def __bool__(self) -> bool:
        return bool(self.shares or self.warnings)

    def for_measure(self, column: str | None) -> list[ValueRow]:
        """Missing, below-bound and above-bound shares of ``column``, in that order."""
        order = {m: i for i, m in enumerate(MEASURE_SHARES)}
        found = [v for v in self.shares if v.column == column and v.metric in order]
        return sorted(found, key=lambda v: order[v.metric])

    def for_counts(self) -> list[ValueRow]:
        """The per-person truncation shares (rows left out, people over the bound)."""
        order = {m: i for i, m in enumerate(COUNT_SHARES)}
        found = [v for v in self.shares if v.column is None and v.metric in order]
        return sorted(found, key=lambda v: order[v.metric])

    def relevant(self, columns: Iterable[str | None], counts: bool = False) -> list[ValueRow]:
        """The shares shown next to numbers of ``columns`` (and of the counts)."""
        out: list[ValueRow] = []
        for c in dict.fromkeys(c for c in columns if c):
            out += self.for_measure(c)
        if counts:
            out += self.for_counts()
        return out

    def bound(self, column: str, side: str) -> str | None:
        """The ``side`` ("lower"/"upper") bound of ``column``: estimated under DP (the
        bounds release), or the contract's as a warning names it; None when neither
        says (the store does not hold the contract's bounds)."""
        for v in self.bounds:
            if v.column == column and v.metric == BOUND_METRICS[side]:
                return f"{v.value:g}"
        for text in self.warnings:
            m = _BOUND.search(text)
            if m and m["name"] == label(column) and m["side"] == side:
                return m["bound"]
        return None

    def warnings_for(self, columns: Iterable[str | None], counts: bool = False) -> list[str]:
        """The warnings about ``columns`` (and, with ``counts``, the ones about no measure:
        the per-person truncation)."""
        names = {label(c) for c in columns if c}
        out = []
        for text in self.warnings:
            m = _MEASURE.search(text)
            if (m and m["name"] in names) or (m is None and counts):
                out.append(text)
        return out


def phrase(v: ValueRow, d: Disclosures) -> str:
    """One share in words, for the note under the number it shapes."""
    share = fmt_share(v.value)
    if v.metric == "missing_share":
        return f"{share} missing"
    if v.metric in ("clamped_low_share", "clamped_high_share"):
        side = "lower" if v.metric == "clamped_low_share" else "upper"
        where = "below" if side == "lower" else "above"
        bound = d.bound(v.column or "", side)
        tail = f" (count as {bound})" if bound else ""
        return f"{share} {where} the {side} bound{tail}"
    if v.metric == "over_bound_share":
        more = f"more than {d.max_rows} rows" if d.max_rows else "more rows than the bound"
        return f"{share} of people have {more}"
    if v.metric == "truncated_share":
        return f"at least {share} of rows left out by the per-person bound"
    return f"{share} {v.metric.replace('_', ' ')}"


#: what each share means, for the quality card and the reading text
MEANINGS = {
    "missing_share": "Missing: the share of rows without a value of this measure. Sums and "
                     "means use the values that are there (or the contract's fill value).",
    "clamped_low_share": "Below the lower bound: the share of present values under the "
                         "contract's lower bound. They count as the bound, which pulls the "
                         "mean up.",
    "clamped_high_share": "Above the upper bound: the share of present values over the "
                          "contract's upper bound. They count as the bound, which pulls the "
                          "mean down.",
    "over_bound_share": "People over the row bound: the share of people with more rows than "
                        "the contract's per-person bound.",
    "truncated_share": "Rows left out: at least this share of rows was left out at random by "
                       "the per-person bound; counts and sums cover the rows kept.",
}


def what(metric: str) -> str:
    """The short name of a share, for tables."""
    return {
        "missing_share": "missing",
        "clamped_low_share": "below the lower bound",
        "clamped_high_share": "above the upper bound",
        "over_bound_share": "people over the row bound",
        "truncated_share": "rows left out by the per-person bound (at least)",
    }.get(metric, metric.replace("_", " "))


def columns_of(values: Sequence[ValueRow]) -> list[str]:
    return list(dict.fromkeys(v.column for v in values if v.column))


# ----------------------------------------------------------------------------- components


def quality_warnings(page: str, disc: Disclosures) -> dbc.Alert | None:
    """The quality release's sentences, at the top of the page: they are the warnings."""
    if not disc.warnings:
        return None
    return dbc.Alert([
        html.H5("What may bias these numbers", className="alert-heading"),
        html.Ul([html.Li(text) for text in disc.warnings], className="mb-1"),
        html.P("These shares are differentially private estimates too; the Data quality "
               "section lists every share with its 95% interval.", className="mb-0 small"),
    ], color="warning", className="my-3", id=f"{page}-quality-warnings")


def disclosure(shares: Sequence[ValueRow], disc: Disclosures) -> list[Any]:
    """Shares in words, each with its noise-impact badge and its interval as a tooltip:
    "12% missing · 13% above the upper bound (count as 200)"."""
    out: list[Any] = []
    for v in shares:
        if out:
            out.append(" · ")
        out.append(html.Span([phrase(v, disc), " ", impact_badge(v)],
                             title=fmt_share_interval(v.lower, v.upper)))
    return out


def measure_note(page: str, column: str | None, disc: Disclosures, name: str,
                 prefix: bool = True) -> html.Div | None:
    """The shares of ``column`` as a note under the numbers of a card."""
    shares = disc.for_measure(column)
    if not column or not shares:
        return None
    lead = [f"Values of {column}: "] if prefix else []
    return html.Div(lead + disclosure(shares, disc), className="small text-muted mt-2",
                    id={"type": f"{page}-disclosure", "name": name})


def kpi_notes(plain: Sequence[ValueRow], disc: Disclosures) -> dict[int, list[Any]]:
    """Which KPI card carries which disclosure: a measure's shares under its mean (or its
    last card), the per-person truncation under the counts."""
    notes: dict[int, list[Any]] = {}
    home: dict[str, int] = {}
    for i, v in enumerate(plain):
        if v.column and (v.column not in home or v.metric == "mean"
                         or plain[home[v.column]].metric != "mean"):
            home[v.column] = i
    for column, i in home.items():
        shares = disc.for_measure(column)
        if shares:
            notes[i] = disclosure(shares, disc)
    counts = {v.metric: i for i, v in enumerate(plain) if v.column is None}
    truncated = [v for v in disc.for_counts() if v.metric == "truncated_share"]
    over = [v for v in disc.for_counts() if v.metric == "over_bound_share"]
    if "count" in counts and "units" in counts:
        if truncated:
            notes[counts["count"]] = disclosure(truncated, disc)
        if over:
            notes[counts["units"]] = disclosure(over, disc)
    elif "count" in counts or "units" in counts:
        both = disclosure([*truncated, *over], disc)
        if both:
            notes[counts.get("count", counts.get("units", 0))] = both
    return notes


def quality_table(page: str, disc: Disclosures) -> list[Any]:
    """Every share with its 95% interval and badge (and any estimated bound), and what each
    share means: the body of the Data quality card."""
    rows = [[v.column or "all rows", what(v.metric),
             with_badge(fmt_share(v.value), v), fmt_share_interval(v.lower, v.upper)]
            for v in disc.shares]
    rows += [[v.column or "", metric_label(v.metric, None), with_badge(fmt_number(v.value), v),
              "estimated under DP from this file"] for v in disc.bounds]
    metrics = list(dict.fromkeys(v.metric for v in disc.shares))
    return [
        values_table(["Measure", "Share", "Value", "95% interval of the noise"], rows,
                     table_id=f"{page}-quality-table"),
        html.Ul([html.Li(MEANINGS[m]) for m in metrics if m in MEANINGS],
                className="small text-muted mt-3 mb-0"),
    ]
