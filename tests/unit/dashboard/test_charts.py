"""Figures show intervals, and labels from data are drawn as text, never as HTML."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import html

from analytics.vocabulary import WITH, versus
from dashboard.charts import (
    bar_figure,
    correlation_figure,
    correlation_pair,
    group_label,
    metric_label,
    plot_text,
    trend_figure,
)
from dashboard.components import values_table
from dashboard.theme import OKABE_ITO
from tests.unit.dashboard.values import value

SCRIPT = "<script>alert(1)</script>"


def test_plot_text_escapes_html() -> None:
    assert plot_text(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert plot_text('<a href="javascript:x">y</a>') == '&lt;a href="javascript:x"&gt;y&lt;/a&gt;'
    assert plot_text("A & B") == "A &amp; B"


def test_bar_labels_are_escaped_and_bars_have_error_bars() -> None:
    fig = bar_figure([value("mean", 1.0, 0.8, 1.3, group={"team": SCRIPT}),
                      value("mean", 2.0, 1.5, 2.1, group={"team": "Atlas"})], "Mean")
    (bar,) = fig.data
    assert isinstance(bar, go.Bar)
    assert list(bar.x) == [plot_text(SCRIPT), "Atlas"]
    assert "<script>" not in fig.to_json()
    assert list(bar.error_y.array) == [0.30000000000000004, 0.10000000000000009]
    assert list(bar.error_y.arrayminus) == [0.19999999999999996, 0.5]
    assert list(bar.marker.color) == list(OKABE_ITO[:2])


def test_trend_has_a_band_and_the_forecast_its_own() -> None:
    series = [value("mean", 10.0 + i, 9.0 + i, 11.0 + i, analysis="trend",
                    group={"finish_date": f"2024-0{i + 1}"}) for i in range(3)]
    forecast = [value("forecast", 14.0, 12.0, 16.0, analysis="forecast",
                      group={"finish_date": "2024-04"})]
    fig = trend_figure({"Mean": series}, forecast)
    fills = [t for t in fig.data if t.fill == "toself"]
    lines = [t for t in fig.data if t.fill != "toself"]
    assert len(fills) == 2 and len(lines) == 2
    assert lines[1].line.dash == "dash"
    assert list(lines[0].x) == ["2024-01", "2024-02", "2024-03"]


def test_correlation_heatmap_shows_only_published_values() -> None:
    # as the producer publishes it: column x, group {"with": y}
    r = value("pearson_r", -0.42, -0.5, -0.3, analysis="correlation", column="days",
              group={WITH: "efficiency"})
    assert correlation_pair(r) == ("days", "efficiency")
    fig = correlation_figure([r])
    (heat,) = fig.data
    assert heat.z[0][1] == -0.42 and heat.z[1][0] == -0.42
    assert heat.z[0][0] is None and heat.z[1][1] is None  # r = 1 is not a published value


def test_labels() -> None:
    assert group_label({}) == "all"
    assert group_label({"team": "Atlas", versus("team"): "Borealis"}) == "Atlas vs Borealis"
    assert metric_label("quantile_0.5", "days") == "Median of days"
    assert metric_label("quantile_0.25", "days") == "25th percentile of days"
    assert metric_label("count") == "Rows"
    assert metric_label("mean", "efficiency") == "Mean of efficiency"


def test_tables_render_keys_as_text() -> None:
    table = values_table(["Group"], [[SCRIPT]])
    cell = table.children[1].children[0].children[0]
    assert isinstance(cell, html.Td) and cell.children == SCRIPT  # React escapes strings
