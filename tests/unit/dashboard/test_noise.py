"""Noise-impact badges: low / medium / high from the 95% half-width, labels for values
without a 95% interval, and thresholds that the docs and the reading text state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analytics.vocabulary import SHARES
from dashboard import noise
from dashboard.noise import interval_kind, noise_impact
from tests.unit.dashboard.values import value

DOCS = Path(__file__).resolve().parents[3] / "docs" / "dashboard.md"


@pytest.mark.parametrize(("metric", "v", "lower", "upper", "level"), [
    ("mean", 100.0, 91.0, 109.0, "low"),        # ±9%
    ("mean", 100.0, 90.0, 110.0, "medium"),     # ±10%: medium starts at LOW_RELATIVE
    ("mean", 100.0, 51.0, 149.0, "medium"),
    ("mean", 100.0, 50.0, 150.0, "high"),       # ±50%: high starts at HIGH_RELATIVE
    ("count", 12.0, 0.0, 30.0, "high"),         # the interval includes zero
    ("mean", 0.4, -0.01, 0.81, "high"),
    ("sum", 1000.0, 995.0, 1005.0, "low"),
    ("count", 100.0, 99.0, 120.0, "medium"),    # lopsided: the larger side counts (20%)
    ("difference", 0.18, 0.1, 0.26, "medium"),  # relative to the value: 44%
    ("difference", -2.0, -3.0, 0.5, "high"),    # a difference may include zero: 125%
    ("ratio", 1.19, 1.1, 1.28, "low"),
    ("pearson_r", -0.42, -0.49, -0.35, "medium"),
])
def test_levels_follow_the_relative_half_width(metric: str, v: float, lower: float,
                                               upper: float, level: str) -> None:
    impact = noise_impact(value(metric, v, lower, upper))
    assert impact.level == level
    assert impact.text == f"noise: {level}"
    assert {"low": "success", "medium": "warning", "high": "danger"}[level] == impact.colour


@pytest.mark.parametrize(("v", "lower", "upper", "level"), [
    (0.13, 0.12, 0.14, "low"),       # ±1 point
    (0.13, 0.11, 0.15, "medium"),    # ±2 points: medium starts at LOW_SHARE_POINTS
    (0.0, 0.0, 0.03, "medium"),      # clipped at 0: the upper side counts
    (0.14, 0.0, 0.32, "high"),       # ±18 points
    (0.5, 0.4, 0.6, "high"),         # ±10 points: high starts at HIGH_SHARE_POINTS
])
def test_shares_use_percentage_points(v: float, lower: float, upper: float,
                                      level: str) -> None:
    for metric in SHARES:
        assert noise_impact(value(metric, v, lower, upper)).level == level


def test_values_without_a_95_interval_get_a_label() -> None:
    quantile = noise_impact(value("quantile_0.5", 12.0, 10.9, 13.2))
    assert (quantile.level, quantile.text) == ("rough guide", "rough guide")
    assert "not a 95% interval" in quantile.why
    forecast = noise_impact(value("forecast", 140.0, 120.0, 160.0))
    assert forecast.text == "forecast" and "prediction interval" in forecast.why
    assert noise_impact(value("mean", 1.0)).text == "no interval"


def test_interval_kinds() -> None:
    assert "not a 95% interval" in interval_kind("quantile_0.25")
    assert interval_kind("difference").startswith("simultaneous 95%")
    assert interval_kind("ratio").startswith("simultaneous 95%")
    assert interval_kind("forecast").startswith("95% prediction interval")
    assert interval_kind("mean") == "95% interval of the noise"


def test_the_thresholds_are_documented() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name in ("LOW_RELATIVE", "HIGH_RELATIVE", "LOW_SHARE_POINTS", "HIGH_SHARE_POINTS"):
        assert name in docs, f"docs/dashboard.md does not name {name}"
    assert f"{noise.LOW_RELATIVE:.0%}" in docs and f"{noise.HIGH_RELATIVE:.0%}" in docs
    for points in (noise.LOW_SHARE_POINTS, noise.HIGH_SHARE_POINTS):
        assert re.search(rf"\b{points:g} percentage points", docs)
