"""Means over the values that are there, and what shaped the numbers disclosed under DP:
the shares missing, clamped at a bound and left out by the per-person truncation."""

from __future__ import annotations

import re
import statistics
from typing import Any

import polars as pl
import pytest

from analytics.analyses import QUALITY_SHARE, plan_analyses
from privacy.budget import PrivacyLoss
from privacy.contract import Contract
from privacy.results import PublishedValue, ReleaseSet

#: many repeats keep the 92-98% band several standard errors wide (0.7% at 1,000)
REPEATS = 1000
LOSS = PrivacyLoss(1.0, 0.0)


def _contract(salary: dict[str, Any] | None = None, **extra: Any) -> Contract:
    column = {"role": "measure", "type": "float", "bounds": [0, 200]} | (salary or {})
    data: dict[str, Any] = {
        "dataset": "pay",
        "rows_are_people": True,
        "budget": {"epsilon_cap": 1000},
        "columns": {"salary": column},
        "analyses": [{"kind": "summary"}],
    } | extra
    return Contract.model_validate(data)


def _thirty_percent_missing(n: int = 2000) -> pl.DataFrame:
    """Present values with mean exactly 100 (60..140), and 30% of the rows blank."""
    present = [60.0 + 80.0 * i / (int(n * 0.7) - 1) for i in range(int(n * 0.7))]
    values: list[float | None] = [*present, *([None] * (n - len(present)))]
    return pl.DataFrame({"salary": values[::-1]}, schema={"salary": pl.Float64})


def _value(rs: ReleaseSet, metric: str, column: str | None = "salary") -> PublishedValue:
    [v] = [v for r in rs.releases for v in r.values if v.metric == metric and v.column == column]
    return v


def test_the_mean_counts_only_present_values_and_its_interval_is_calibrated() -> None:
    frame = _thirty_percent_missing()
    present = frame["salary"].drop_nulls()
    assert frame.height == 2000 and present.len() == 1400 and present.mean() == pytest.approx(100)
    plan = plan_analyses(frame.lazy(), _contract(), LOSS)
    try:
        means = [_value(plan.run(), "mean") for _ in range(REPEATS)]
    finally:
        plan.close()
    hits = sum(v.lower is not None and v.upper is not None and v.lower <= 100 <= v.upper
               for v in means)  # fmt: skip
    assert 0.92 * REPEATS <= hits <= 0.98 * REPEATS, f"covered 100 in {hits} of {REPEATS}"
    # the old behaviour (every blank counted as the lower bound 0) gave about 70
    average = statistics.mean(v.value for v in means)
    assert average == pytest.approx(100, abs=1.0)


def _repeat(frame: pl.DataFrame, contract: Contract, times: int = REPEATS) -> list[ReleaseSet]:
    plan = plan_analyses(frame.lazy(), contract, LOSS)
    try:
        return [plan.run() for _ in range(times)]
    finally:
        plan.close()


def _covered(values: list[PublishedValue], truth: float) -> float:
    return sum(
        v.lower is not None and v.upper is not None and v.lower <= truth <= v.upper for v in values
    ) / len(values)


def test_a_blank_counts_as_a_value_only_when_the_contract_says_so() -> None:
    runs = _repeat(_thirty_percent_missing(), _contract({"missing": "fill", "fill": 0}), 200)
    # every blank counts as 0: the mean is 1400 × 100 / 2000 = 70, as defined
    assert 0.88 <= _covered([_value(rs, "mean") for rs in runs], 70.0) <= 1.0
    assert 0.88 <= _covered([_value(rs, "missing_share") for rs in runs], 0.3) <= 1.0
    quality = [r for rs in runs for r in rs.releases if r.analysis == "quality"]
    said = sum(any("count as 0 (missing: fill)" in s for s in r.insights) for r in quality)
    assert said >= 0.95 * len(quality)


def test_the_share_missing_is_released_with_an_insight() -> None:
    runs = _repeat(_thirty_percent_missing(), _contract(), 200)
    quality = [r for rs in runs for r in rs.releases if r.analysis == "quality"]
    assert all(
        r.loss is not None and r.loss.epsilon == pytest.approx(QUALITY_SHARE * LOSS.epsilon)
        for r in quality
    )
    assert 0.88 <= _covered([_value(rs, "missing_share") for rs in runs], 0.3) <= 1.0
    assert 0.88 <= _covered([_value(rs, "present") for rs in runs], 1400) <= 1.0
    said = sum(any("of salary values are missing" in s for s in r.insights) for r in quality)
    assert said >= 0.95 * len(quality)


def test_values_above_the_upper_bound_are_disclosed_with_the_bias() -> None:
    """13% of salaries above the public upper bound: the clamped share and the bias are
    published next to the (clamped) average."""
    n = 4000
    above = int(n * 0.13)
    frame = pl.DataFrame({"salary": [150.0] * (n - above) + [500.0] * above})
    runs = _repeat(frame, _contract(), 200)
    assert 0.88 <= _covered([_value(rs, "clamped_high_share") for rs in runs], 0.13) <= 1.0
    assert 0.88 <= _covered([_value(rs, "clamped_low_share") for rs in runs], 0.0) <= 1.0
    # the average is the clamped one, as defined: 0.87 × 150 + 0.13 × 200
    assert 0.88 <= _covered([_value(rs, "mean") for rs in runs], 0.87 * 150 + 0.13 * 200) <= 1.0
    sentences = [
        s for rs in runs for r in rs.releases if r.analysis == "quality" for s in r.insights
    ]
    bias = [s for s in sentences if "above the contract's upper bound of 200" in s]
    assert len(bias) >= 190, f"the bias sentence came {len(bias)} times in 200 releases"
    pattern = re.compile(
        r"About \d+% of salary values were above the contract's upper bound of 200 and count "
        r"as 200: the average of salary is biased low; raise the bound"
    )
    assert all(pattern.match(s) for s in bias), bias[:3]


def test_rows_left_out_by_the_per_person_bound_are_disclosed() -> None:
    """Half the people have 9 rows against a bound of 3: they are over the bound, and at
    least a third of all rows (3 extra per person, counted at most k per person) are out."""
    rows = [(f"a{i}", 1.0) for i in range(600)]  # 600 people with one row
    rows += [(f"b{i}", 1.0) for i in range(600) for _ in range(9)]  # 600 with nine
    frame = pl.DataFrame(rows, schema=["pid", "x"], orient="row")
    contract = Contract.model_validate(
        {
            "dataset": "visits",
            "privacy_unit": "pid",
            "max_rows_per_unit": 3,
            "budget": {"epsilon_cap": 1000},
            "columns": {
                "pid": {"role": "identifier", "action": "pseudonymize"},
                "x": {"role": "measure", "type": "float", "bounds": [0, 2], "missing": "reject"},
            },
            "analyses": [{"kind": "summary"}],
        }
    )
    runs = _repeat(frame, contract, 200)
    # people over the bound: 600 of 1,200 (each person counts once)
    assert 0.88 <= _covered([_value(rs, "over_bound_share", None) for rs in runs], 0.5) <= 1.0
    # kept: 600 + 600 × 3 = 2,400 rows; left out, counted at most 3 per person: 1,800 of the
    # 3,600 really left out: the published share is a lower bound, and covers 1800 / 4200
    truth = 1800 / (2400 + 1800)
    assert 0.88 <= _covered([_value(rs, "truncated_share", None) for rs in runs], truth) <= 1.0
    quality = [r for rs in runs for r in rs.releases if r.analysis == "quality"]
    said = sum(any("more than 3 rows" in s for s in r.insights) for r in quality)
    assert said >= 0.9 * len(quality)
    assert not [v for r in quality for v in r.values if v.metric == "missing_share"]  # reject
