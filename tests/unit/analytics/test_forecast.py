"""Forecasts: post-processing of released trend values, with a prediction interval."""

from __future__ import annotations

import pytest

from analytics.forecasts import fit_linear, forecast_linear, t975
from analytics.trends import period_label, period_ordinal
from privacy.contract import Granularity


def test_linear_forecast_recovers_an_exact_line() -> None:
    result = forecast_linear([1, 2, 3, 4], [10.0, 12.0, 14.0, 16.0], horizon=2)
    assert result is not None
    fit, points = result
    assert fit.slope == pytest.approx(2.0)
    assert [p.ordinal for p in points] == [5, 6]
    assert points[0].value == pytest.approx(18.0)
    assert points[0].lower == pytest.approx(18.0) and points[0].upper == pytest.approx(18.0)


def test_noisy_values_widen_the_interval_and_it_grows_with_horizon() -> None:
    result = forecast_linear([1, 2, 3, 4, 5], [10.0, 13.0, 13.5, 17.0, 17.5], horizon=3)
    assert result is not None
    _, points = result
    widths = [p.upper - p.lower for p in points]
    assert widths[0] > 0 and widths == sorted(widths)


def test_too_few_periods_give_no_forecast() -> None:
    assert forecast_linear([1, 2], [1.0, 2.0], 3) is None
    assert fit_linear([3, 3, 3], [1.0, 2.0, 3.0]) is None


def test_t_quantiles() -> None:
    assert t975(1) == pytest.approx(12.706)
    assert t975(30) == pytest.approx(2.042)
    assert t975(1000) == pytest.approx(1.962, abs=1e-3)


@pytest.mark.parametrize(
    ("label", "gran"),
    [
        ("2024-03", Granularity.MONTH),
        ("2024-Q4", Granularity.QUARTER),
        ("2024", Granularity.YEAR),
        ("2024-03-05", Granularity.DAY),
        ("2024-03-04", Granularity.WEEK),
    ],
)
def test_period_labels_round_trip_and_are_consecutive(label: str, gran: Granularity) -> None:
    o = period_ordinal(label, gran)
    assert period_label(o, gran) == label
    assert period_ordinal(period_label(o + 1, gran), gran) == o + 1
