"""Insight wording claims only what the interval supports."""

from __future__ import annotations

from analytics import insights
from privacy.results import PublishedValue as PV


def test_mean_sentence_carries_its_interval() -> None:
    (s,) = insights.summary_insights([PV("mean", 5.2, 4.9, 5.5, 0.1, "project_completion_days")])
    assert s == "Average project completion days: 5.20 (95% CI 4.90–5.50)."


def _pair(diff: tuple[float, float, float], ratio: tuple[float, float, float]) -> list[PV]:
    g = {"team": "A", "team_vs": "B"}
    return [
        PV("mean", 1.2, 1.1, 1.3, 0.1, "eff", {"team": "A"}),
        PV("mean", 1.0, 0.9, 1.1, 0.1, "eff", {"team": "B"}),
        PV("difference", *diff, None, "eff", g),
        PV("ratio", *ratio, None, "eff", g),
    ]


def test_clear_difference_is_stated_with_percent_and_interval() -> None:
    out = insights.comparison_insights(
        "efficiency", "team", _pair((0.2, 0.1, 0.3), (1.2, 1.12, 1.28))
    )
    assert out == ["A's average efficiency is 20% higher than B's (95% CI 12% to 28%)."]


def test_interval_crossing_zero_says_no_clear_difference() -> None:
    out = insights.comparison_insights(
        "efficiency", "team", _pair((0.2, -0.05, 0.45), (1.2, 0.95, 1.45))
    )
    assert len(out) == 1 and out[0].startswith("No clear difference in average efficiency")
    assert "higher" not in out[0]


def test_correlation_wording() -> None:
    clear = insights.correlation_insights("a", "b", PV("pearson_r", -0.5, -0.6, -0.4))
    assert "clear moderate negative correlation" in clear[0]
    unclear = insights.correlation_insights("a", "b", PV("pearson_r", 0.1, -0.2, 0.4))
    assert unclear[0].startswith("No clear correlation")


def test_trend_change_only_when_interval_excludes_zero() -> None:
    pts: list[tuple[str, float, float | None]] = [("2024-01", 100, 10), ("2024-02", 103, 10)]
    assert "no clear change" in insights.trend_insights(pts, "rows per month", "month")[0]
    pts[1] = ("2024-02", 200, 10)
    assert "a clear rise" in insights.trend_insights(pts, "rows per month", "month")[0]
    # the half-widths are the unclipped ones: a count near zero keeps its full width
    near_zero: list[tuple[str, float, float | None]] = [("2024-01", 2, 30), ("2024-02", 40, 30)]
    assert "no clear change" in insights.trend_insights(near_zero, "rows per month", "month")[0]


def test_forecast_needs_periods() -> None:
    assert "Too few" in insights.forecast_insights("rows per month", [], 2, "month")[0]


def test_a_correlation_swamped_by_noise_quotes_no_value() -> None:
    (s,) = insights.correlation_insights("a", "b", PV("pearson_r", 1.0, -1.0, 1.0))
    assert s.startswith("No clear correlation") and "r = " not in s and "too few rows" in s


def _quantiles() -> list[PV]:
    return [
        PV(f"quantile_{q}", v, v - 1, v + 1.5, None, "days")
        for q, v in (("0.25", 7.2), ("0.5", 10.5), ("0.75", 14.7))
    ]


def test_quantiles_are_rough_and_withheld_when_noise_could_move_them_far() -> None:
    # a quantile comes with a rough range in the measure's units, never a "95% CI"
    out = insights.distribution_insights("days", _quantiles())
    assert "roughly 10.5 (likely between 9.50 and 12.0)" in out[0] and "not a 95% interval" in out[0]
    assert "CI" not in " ".join(out)
    # none published (too uncertain): one sentence says so, and quotes no value
    (few,) = insights.distribution_insights("days", [])
    assert few.startswith("Too few rows to quote quantiles") and "none is published" in few
    assert insights.distribution_insights("days", [], quantiles_asked=False) == []


