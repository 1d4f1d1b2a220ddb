"""Per-person truncation keeps a random sample of each person's rows, never the first ones
in file order, and sentences do not read its sampling variation as a finding."""

from __future__ import annotations

import datetime as dt
import statistics

import polars as pl

from analytics.analyses import plan_analyses
from privacy.budget import PrivacyLoss
from privacy.contract import Contract
from tests.unit.contracts import contract_of, monthly_days

K = 4
REPEATS = 200


def _contract() -> Contract:
    return Contract.model_validate(
        {
            "dataset": "sorted",
            "privacy_unit": "pid",
            "max_rows_per_unit": K,
            "budget": {"epsilon_cap": 1000, "delta": 1e-6},
            "columns": {
                "pid": {"role": "identifier", "type": "string", "action": "pseudonymize"},
                "day": {"role": "time", "type": "date", "granularity": "month",
                        "periods": {"start": "2025-01-01", "end": "2025-12-31"}},
            },
            "analyses": [{"kind": "trend", "time": "day"}],
        }
    )


def _sorted_file() -> pl.DataFrame:
    """400 rows in every month of 2025, sorted by date. Half the people (300) have 4 rows
    in 4 months; the other half have 12, one per month: three times the bound."""
    rows = [
        (f"L{i}", dt.date(2025, 1 + (i + 3 * j) % 12, 1 + i % 28)) for i in range(300) for j in range(4)
    ]
    rows += [(f"H{i}", dt.date(2025, 1 + m, 1 + i % 28)) for i in range(300) for m in range(12)]
    return pl.DataFrame(rows, schema=["pid", "day"], orient="row").sort("day")


def test_a_flat_sorted_file_shows_no_trend() -> None:
    frame = _sorted_file()
    monthly = frame.group_by(pl.col("day").dt.month()).len()["len"]
    assert monthly.min() == monthly.max() == 400  # the truth is flat
    # keeping each person's first K rows in file order would release 400 rows in each of
    # January to April and 100 in each later month: a false fall
    first = frame.filter(pl.int_range(pl.len()).over("pid") < K)
    by_month = first.group_by(pl.col("day").dt.month()).len().sort("day")["len"].to_list()
    assert by_month[0] == 400 and by_month[-1] == 100

    plan = plan_analyses(frame.lazy(), _contract(), PrivacyLoss(1.0, 0.0))
    try:
        clear, diffs = 0, []
        for _ in range(REPEATS):
            [trend] = [r for r in plan.run().releases if r.analysis == "trend"]
            counts = [v for v in trend.values if v.metric == "count"]
            assert [v.group["day"] for v in (counts[0], counts[-1])] == ["2025-01", "2025-12"]
            diffs.append(counts[0].value - counts[-1].value)
            [sentence] = trend.insights
            clear += "a clear" in sentence
    finally:
        plan.close()
    # the trend insight calls it a clear change in at most 5% of the releases
    assert clear <= 0.05 * REPEATS, f"{clear} of {REPEATS} releases claim a clear change"
    # and January's released count minus December's is zero on average: within 3.3
    # standard errors (a false alarm once in 1,000 runs; 2 would fail one run in 20 by
    # chance), far below the 300 rows a first-rows truncation would put between them
    se = statistics.stdev(diffs) / REPEATS**0.5
    assert abs(statistics.mean(diffs)) <= 3.3 * se, (statistics.mean(diffs), se)
    assert 3.3 * se < 30


def test_trend_sentences_leave_out_periods_the_range_covers_in_part() -> None:
    """The public range starts on 15 January and ends on 10 December: those two months
    hold fewer days of rows, so the sentence compares February with November."""
    from analytics.trends import partial_periods

    contract = contract_of("days", {"day": monthly_days("2025-01-15", "2025-12-10")},
                           [{"kind": "trend", "time": "day"}], budget={"epsilon_cap": 1000})
    assert partial_periods(contract.columns["day"]) == {2025 * 12, 2025 * 12 + 11}
    whole = contract.model_copy(
        update={"columns": {"day": contract.columns["day"].model_copy(update={"periods": None})}}
    )
    assert partial_periods(whole.columns["day"]) == set()
    days = [dt.date(2025, 1, 15) + dt.timedelta(days=i) for i in range(330)]  # to 10 December
    frame = pl.DataFrame({"day": [d for d in days for _ in range(40)]})
    rs = plan_analyses(frame.lazy(), contract, PrivacyLoss(1.0, 0.0))
    try:
        [trend] = [r for r in rs.run().releases if r.analysis == "trend"]
    finally:
        rs.close()
    [sentence] = trend.insights
    assert "(2025-02)" in sentence and "(2025-11)" in sentence, sentence
    months = {v.group["day"] for v in trend.values}
    assert {"2025-01", "2025-12"} <= months  # still published, with their intervals
