"""The dataset page's "How to read these numbers": what a number is, what its interval covers
(the noise added to it, and nothing else), what the quality shares disclose, how
comparisons, quantiles and forecasts differ, and what the noise-impact badges mean. It says
exactly what the math does and no more; docs/dashboard.md says the same.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from analytics.store.rows import BudgetStatus
from dashboard.disclosures import MEANINGS
from dashboard.ids import DATASET
from dashboard.noise import HIGH_RELATIVE, HIGH_SHARE_POINTS, LOW_RELATIVE, LOW_SHARE_POINTS


def how_to_read(budget: BudgetStatus | None = None,
                rows_per_person: int | None = None) -> dbc.Accordion:
    """What the numbers are and what their intervals cover: exactly what the math does
    (``budget``: the dataset's pinned privacy unit and rows per person; ``rows_per_person``:
    the bound the shown release used, when it differs, as a dataset release's may)."""
    k = rows_per_person or (budget.max_rows_per_unit if budget is not None else None)
    if budget is not None and budget.rows_are_people:
        per_person = "each row is a different person"
    elif k is not None:
        per_person = (f"each person contributes at most {k} row{'' if k == 1 else 's'} "
                      "(rows beyond that are left out at random)")
    else:
        per_person = ("each person contributes at most the contract's rows per person (rows "
                      "beyond that are left out at random)")
    low, high = f"{LOW_RELATIVE:.0%}", f"{HIGH_RELATIVE:.0%}"
    low_pp, high_pp = f"{LOW_SHARE_POINTS:g}", f"{HIGH_SHARE_POINTS:g}"
    return dbc.Accordion([
        dbc.AccordionItem([
            html.P(
                "Every number here is differentially private: calibrated random noise was "
                "added before it was published, so no single person's data can be inferred "
                "from it. The noise is why the numbers come with intervals."
            ),
            html.P(
                "What a number is: each value is computed over the data as the release sees "
                "it. A measure's values are clamped to the contract's public bounds, or to "
                "bounds estimated under DP where the contract asks for that (a value above "
                "the upper bound counts as the upper bound, one below the lower bound as the "
                f"lower bound); {per_person}; sums and means run over the values that are "
                "present (blanks are left out, unless the contract says a blank counts as a "
                "fixed value)."
            ),
            html.P(
                "95% interval (95% CI): it covers the noise added to the value as defined "
                "above, and nothing else: in 95 of 100 releases the interval contains the "
                "value computed, without noise, after clamping and the per-person "
                "truncation, over the values present. It does not cover what clamping, "
                "missing values or the truncation do to a number; those are disclosed as "
                "shares instead (below). When two groups' intervals overlap a lot, or a "
                "difference's interval includes 0, the data do not show a clear difference, "
                "and the sentences say so.",
                id=DATASET.how_interval,
            ),
            html.P("The shares of the Data quality section (differentially private too, with "
                   "95% intervals of their own noise; they cost a fixed 10% of each "
                   "release's ε) say what shaped the numbers:", className="mb-1"),
            html.Ul([html.Li(text) for text in MEANINGS.values()], className="mb-2"),
            html.P(
                "When a share is large enough to bias a number, a warning at the top of the "
                "page says which number and in which direction."
            ),
            html.P(
                "Comparisons: the intervals of the differences and ratios between groups are "
                "simultaneous: together they all cover their noise in 95 of 100 releases, so "
                "each is wider than a single 95% interval. Each group's own values carry "
                "ordinary 95% intervals."
            ),
            html.P(
                "Quantiles (median, percentiles): the mechanism that picks them has no "
                "additive accuracy guarantee. Their range, in the measure's units, is a rough "
                "guide derived from the mechanism's rank error, not a 95% interval. When the "
                "rank error is too large, no quantile is published and a sentence says so.",
                id=DATASET.how_quantiles,
            ),
            html.P(
                [
                    "Noise impact badges, for reading without intervals: the badge compares "
                    "the 95% half-width (the larger distance from the value to an end of its "
                    "interval) with the value's size: ", html.Strong("low"), f" under {low}, ",
                    html.Strong("medium"), f" from {low} to {high}, ", html.Strong("high"),
                    f" {high} or more, or when the interval of a count, sum or mean includes "
                    f"zero. Shares use the half-width in percentage points: low under "
                    f"{low_pp}, medium from {low_pp} to {high_pp}, high {high_pp} or more. "
                    "Quantiles are labelled \"rough guide\" and forecasts \"forecast\": "
                    "they have no 95% interval of their noise.",
                ],
                id=DATASET.how_badges,
            ),
            html.P(
                "ε (epsilon): how much privacy a release spends. Smaller ε means more noise "
                "and stronger protection. Each dataset has a total ε budget; once it is "
                "spent, nothing more is released."
            ),
            html.P(
                "Forecasts are computed from the published trend only (no extra privacy "
                "cost). Their band is the 95% prediction interval of a straight line fitted "
                "to the noisy trend, if that trend continues: a projection, not a promise.",
                className="mb-0",
            ),
        ], title="How to read these numbers", item_id="how"),
    ], start_collapsed=True, id=DATASET.how_to_read, className="mb-4")
