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

from analytics.store.rows import ValueRow
from analytics.vocabulary import SHARES, Kind, Metric
from dashboard.charts import metric_label
from dashboard.components import fmt_interval, fmt_number, impact_badge, values_table, with_badge
from dashboard.ids import DATASET, pattern

BOUND_METRICS = {"lower": Metric.CLAMP_LOWER, "upper": Metric.CLAMP_UPPER}
MEASURE_SHARES = (Metric.MISSING_SHARE, Metric.CLAMPED_LOW_SHARE, Metric.CLAMPED_HIGH_SHARE)
COUNT_SHARES = (Metric.TRUNCATED_SHARE, Metric.OVER_BOUND_SHARE)
#: the note names a bound of the contract that a warning names ("... above the contract's
#: upper bound of 200 and count as 200 ...")
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
    """"95% CI 11% to 15%" (empty without an interval)."""
    return fmt_interval(lower, upper, lambda x: f"{100 * x:.0f}%")


@dataclass(frozen=True)
class Disclosures:
    """The latest quality release of a dataset: its shares and its warnings."""

    shares: tuple[ValueRow, ...] = ()
    warnings: tuple[str, ...] = ()
    #: the dataset's pinned rows per person (None: unknown, or rows are people)
    max_rows: int | None = None
    #: bounds estimated under DP (clamp_lower/clamp_upper of the ``bounds`` release)
    bounds: tuple[ValueRow, ...] = ()
    #: the bounds release's sentences
    bounds_said: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: Iterable[ValueRow], sentences: dict[int, list[str]],
           max_rows: int | None = None) -> Disclosures:
        values = list(values)
        shares = tuple(v for v in values if v.analysis == Kind.QUALITY and v.metric in SHARES)
        said = sentences.get(shares[0].release_id, []) if shares else []
        bounds = tuple(v for v in values
                       if v.analysis == Kind.BOUNDS and v.metric in BOUND_METRICS.values())
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
        says."""
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
    if v.metric == Metric.MISSING_SHARE:
        return f"{share} missing"
    if v.metric in (Metric.CLAMPED_LOW_SHARE, Metric.CLAMPED_HIGH_SHARE):
        side, where = (("lower", "below") if v.metric == Metric.CLAMPED_LOW_SHARE
                       else ("upper", "above"))
        bound = d.bound(v.column or "", side)
        tail = f" (count as {bound})" if bound else ""
        return f"{share} {where} the {side} bound{tail}"
    if v.metric == Metric.OVER_BOUND_SHARE:
        more = f"more than {d.max_rows} rows" if d.max_rows else "more rows than the bound"
        return f"{share} of people have {more}"
    return f"at least {share} of rows left out by the per-person bound"  # truncated_share


#: what each share means, for the quality card and the reading text
MEANINGS = {
    Metric.MISSING_SHARE:
        "Missing: the share of rows without a value of this measure. Sums and means use the "
        "values that are there (or the contract's fill value).",
    Metric.CLAMPED_LOW_SHARE:
        "Below the lower bound: the share of present values under the contract's lower "
        "bound. They count as the bound, which pulls the mean up.",
    Metric.CLAMPED_HIGH_SHARE:
        "Above the upper bound: the share of present values over the contract's upper "
        "bound. They count as the bound, which pulls the mean down.",
    Metric.OVER_BOUND_SHARE:
        "People over the row bound: the share of people with more rows than the contract's "
        "per-person bound.",
    Metric.TRUNCATED_SHARE:
        "Rows left out: at least this share of rows was left out at random by the "
        "per-person bound; counts and sums cover the rows kept.",
}

#: the short name of each share, for tables
SHORT_NAMES = {
    Metric.MISSING_SHARE: "missing",
    Metric.CLAMPED_LOW_SHARE: "below the lower bound",
    Metric.CLAMPED_HIGH_SHARE: "above the upper bound",
    Metric.OVER_BOUND_SHARE: "people over the row bound",
    Metric.TRUNCATED_SHARE: "rows left out by the per-person bound (at least)",
}


def columns_of(values: Sequence[ValueRow]) -> list[str]:
    return list(dict.fromkeys(v.column for v in values if v.column))


# ----------------------------------------------------------------------------- components


def quality_warnings(disc: Disclosures) -> dbc.Alert | None:
    """The quality release's sentences, at the top of the page: they are the warnings."""
    if not disc.warnings:
        return None
    return dbc.Alert([
        html.H5("What may bias these numbers", className="alert-heading"),
        html.Ul([html.Li(text) for text in disc.warnings], className="mb-1"),
        html.P("These shares are differentially private estimates too; the Data quality "
               "section lists every share with its 95% interval.", className="mb-0 small"),
    ], color="warning", className="my-3", id=DATASET.quality_warnings)


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


def measure_note(column: str | None, disc: Disclosures, name: str) -> html.Div | None:
    """The shares of ``column`` as a note under the numbers of a card."""
    shares = disc.for_measure(column)
    if not column or not shares:
        return None
    return html.Div([f"Values of {column}: ", *disclosure(shares, disc)],
                    className="small text-muted mt-2",
                    id=pattern(DATASET.disclosure, name))


def kpi_notes(plain: Sequence[ValueRow], disc: Disclosures) -> dict[int, list[Any]]:
    """Which KPI card carries which disclosure: a measure's shares under its mean (or its
    last card), the per-person truncation under the counts."""
    notes: dict[int, list[Any]] = {}
    home: dict[str, int] = {}
    for i, v in enumerate(plain):
        if v.column and (v.column not in home or v.metric == Metric.MEAN
                         or plain[home[v.column]].metric != Metric.MEAN):
            home[v.column] = i
    for column, i in home.items():
        shares = disc.for_measure(column)
        if shares:
            notes[i] = disclosure(shares, disc)
    # the per-person truncation: rows left out under the rows, people over it under people
    counts = {v.metric: i for i, v in enumerate(plain) if v.column is None}
    for metric, share in ((Metric.COUNT, Metric.TRUNCATED_SHARE),
                          (Metric.UNITS, Metric.OVER_BOUND_SHARE)):
        found = [v for v in disc.for_counts() if v.metric == share]
        if metric in counts and found:
            notes[counts[metric]] = disclosure(found, disc)
    return notes


def quality_table(disc: Disclosures) -> list[Any]:
    """Every share with its 95% interval and badge (and any estimated bound), and what each
    share means: the body of the Data quality card."""
    rows = [[v.column or "all rows", SHORT_NAMES[v.metric],
             with_badge(fmt_share(v.value), v), fmt_share_interval(v.lower, v.upper)]
            for v in disc.shares]
    rows += [[v.column or "", metric_label(v.metric, None), with_badge(fmt_number(v.value), v),
              "estimated under DP from this file"] for v in disc.bounds]
    metrics = list(dict.fromkeys(v.metric for v in disc.shares))
    return [
        values_table(["Measure", "Share", "Value", "95% interval of the noise"], rows,
                     table_id=DATASET.quality_table),
        html.Ul([html.Li(MEANINGS[m]) for m in metrics],
                className="small text-muted mt-3 mb-0"),
    ]
