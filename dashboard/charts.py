"""Plotly figures and export rows built from published values, and nothing else.

Pure functions: they take the value rows of the read-only query API
(:class:`analytics.store.rows.ValueRow`) and build figures that show every noisy value with its
interval (error bars, bands: the 95% interval of its noise, a forecast's 95% prediction
interval) and, in the hover text, its noise-impact badge (``dashboard.noise``). Text from
data (group keys) is HTML-escaped before it reaches plotly, whose labels understand a few
HTML tags: ``<script>`` is drawn literally.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go

from analytics.store.rows import ValueRow
from analytics.vocabulary import QUANTILE_PREFIX, WITH, Metric, quantile_metric, versus
from dashboard.noise import interval_kind, interval_text, is_quantile, is_share, noise_impact
from dashboard.theme import BLUE, OKABE_ITO, ORANGE, TEMPLATE_NAME, band_colour, install_template

#: a chart's "Download CSV": ``lower_95``/``upper_95`` hold 95% intervals only (of the noise;
#: simultaneous for differences and ratios; a forecast's prediction interval), ``interval``
#: says which; a quantile's rough range goes to ``rough_lower``/``rough_upper``;
#: ``noise_impact`` is the badge the page shows; rows with metric ``insight`` carry a
#: sentence (the quality warnings among them) in ``note``
EXPORT_COLUMNS = [
    "release", "analysis", "metric", "column", "group", "value", "lower_95", "upper_95",
    "interval", "rough_lower", "rough_upper", "noise_scale", "noise_impact", "epsilon",
    "published_at", "note",
]  # fmt: skip


#: the metric of an export row that carries a sentence
INSIGHT = "insight"


def plot_text(text: object) -> str:
    """Text for a plotly label: HTML-escaped, so plotly draws it literally."""
    return html.escape(str(text), quote=False)


def group_label(group: dict[str, str]) -> str:
    """The plain-text label of a group: its key values in key order; a contrast's
    ``{by: x, versus(by): y}`` reads "x vs y"."""
    if not group:
        return "all"
    other = next((versus(k) for k in group if versus(k) in group), None)
    main = " · ".join(str(v) for k, v in sorted(group.items()) if k != other)
    return f"{main} vs {group[other]}" if other else main


_LABELS = {
    Metric.COUNT: "Rows",
    Metric.UNITS: "People",
    Metric.PRESENT: "Present values",
    Metric.SUM: "Sum",
    Metric.MEAN: "Mean",
    Metric.HISTOGRAM: "Rows",
    Metric.DIFFERENCE: "Difference",
    Metric.RATIO: "Ratio",
    Metric.PEARSON_R: "Correlation (r)",
    Metric.FORECAST: "Forecast",
    Metric.CLAMP_LOWER: "Estimated lower bound",
    Metric.CLAMP_UPPER: "Estimated upper bound",
}
#: counts of rows or people: never "of" the column they are published with
_COUNTS = (Metric.COUNT, Metric.UNITS, Metric.HISTOGRAM)


def metric_label(metric: str, column: str | None = None) -> str:
    """A published value's name for people: "Mean of salary", "Median of days", "Rows"."""
    if is_share(metric):
        return _share_label(metric, column)
    if metric == quantile_metric(0.5):
        label = "Median"
    elif is_quantile(metric):
        label = f"{float(metric.removeprefix(QUANTILE_PREFIX)) * 100:g}th percentile"
    else:
        label = _LABELS.get(metric, metric)
    if column and metric not in _COUNTS:
        return f"{label} of {column}"
    return label


def _share_label(metric: str, column: str | None) -> str:
    of = f" of {column}" if column else ""
    return {
        Metric.MISSING_SHARE: f"Missing values{of}",
        Metric.CLAMPED_LOW_SHARE: f"Values{of} below the lower bound",
        Metric.CLAMPED_HIGH_SHARE: f"Values{of} above the upper bound",
        Metric.OVER_BOUND_SHARE: "People over the per-person row bound",
        Metric.TRUNCATED_SHARE: "Rows left out by the per-person bound (at least)",
    }[metric]


def export_rows(values: Iterable[ValueRow],
                notes: Iterable[tuple[ValueRow, str]] = ()) -> list[dict[str, Any]]:
    """The rows of a chart's "Download CSV": exactly the published values (with what their
    interval is and the noise-impact badge the page shows), then one row per sentence in
    ``notes`` (a value of the release it belongs to, and the sentence)."""
    rows = []
    for v in values:
        rough = is_quantile(v.metric)
        has_interval = v.lower is not None and v.upper is not None
        rows.append({
            "release": v.release_name,
            "analysis": v.analysis,
            "metric": v.metric,
            "column": v.column,
            "group": group_label(v.group) if v.group else "",
            "value": v.value,
            "lower_95": None if rough else v.lower,
            "upper_95": None if rough else v.upper,
            "interval": interval_kind(v.metric) if has_interval else "",
            "rough_lower": v.lower if rough else None,
            "rough_upper": v.upper if rough else None,
            "noise_scale": None if rough else v.scale,
            "noise_impact": noise_impact(v).text,
            "epsilon": v.epsilon,
            "published_at": v.created_at.isoformat() if v.created_at else None,
            "note": "",
        })
    for v, text in notes:
        rows.append({
            "release": v.release_name,
            "analysis": v.analysis,
            "metric": INSIGHT,
            "epsilon": v.epsilon,
            "published_at": v.created_at.isoformat() if v.created_at else None,
            "note": text,
        })
    return rows


def _figure(title: str | None = None, **layout: Any) -> go.Figure:
    install_template()
    fig = go.Figure()
    fig.update_layout(template=TEMPLATE_NAME, title=plot_text(title) if title else None, **layout)
    return fig


def _errors(values: Sequence[ValueRow]) -> dict[str, Any] | None:
    if not any(v.lower is not None and v.upper is not None for v in values):
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": [max(v.upper - v.value, 0.0) if v.upper is not None else 0.0 for v in values],
        "arrayminus": [max(v.value - v.lower, 0.0) if v.lower is not None else 0.0
                       for v in values],
        "color": "#343a40",
        "thickness": 1.5,
        "width": 6,
    }


def bar_figure(values: Sequence[ValueRow], y_title: str, *,
               colour_by_group: bool = True) -> go.Figure:
    """Bars with 95% error bars, one per group (comparisons, histograms)."""
    rows = list(values)
    labels = [plot_text(group_label(v.group)) for v in rows]
    colours = [OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(rows))] if colour_by_group \
        else [BLUE] * len(rows)
    fig = _figure(yaxis_title=plot_text(y_title), showlegend=False, bargap=0.35)
    fig.add_bar(
        x=labels,
        y=[v.value for v in rows],
        error_y=_errors(rows),
        marker_color=colours,
        customdata=[[hover_text(v)] for v in rows],
        hovertemplate="%{x}: %{y:.4g}<br>%{customdata[0]}<extra></extra>",
    )
    fig.update_xaxes(type="category")
    return fig


def hover_text(v: ValueRow) -> str:
    """A value's interval, named for what it is, and its noise-impact badge, for a hover."""
    impact = noise_impact(v).text
    if v.lower is None or v.upper is None:
        return f"no interval (post-processing) · {impact}"
    return f"{interval_text(v.metric, f'{v.lower:.4g}', f'{v.upper:.4g}')} · {impact}"


def period(v: ValueRow) -> str:
    """The period of a trend's or forecast's value: its group is ``{time column: label}``."""
    return next(iter(v.group.values()))


def trend_figure(series: dict[str, Sequence[ValueRow]], forecast: Sequence[ValueRow] = (),
                 y_title: str = "") -> go.Figure:
    """One line per series with its 95% band; the forecast dashed with its own band (its 95%
    prediction interval)."""
    fig = _figure(yaxis_title=plot_text(y_title), hovermode="x unified")
    for i, (name, values) in enumerate(series.items()):
        colour = OKABE_ITO[i % len(OKABE_ITO)]
        _line_with_band(fig, sorted(values, key=period), name, colour, dash=None)
    if forecast:
        _line_with_band(fig, sorted(forecast, key=period), "forecast", ORANGE, dash="dash")
    fig.update_xaxes(type="category")
    return fig


def _line_with_band(fig: go.Figure, pts: Sequence[ValueRow], name: str, colour: str,
                    dash: str | None) -> None:
    xs = [plot_text(period(v)) for v in pts]
    banded = [v for v in pts if v.lower is not None and v.upper is not None]
    if banded:
        bx = [plot_text(period(v)) for v in banded]
        fig.add_scatter(
            x=bx + bx[::-1],
            y=[v.upper for v in banded] + [v.lower for v in banded][::-1],
            fill="toself",
            mode="lines",
            fillcolor=band_colour(colour),
            line={"width": 0},
            hoverinfo="skip",
            name=plot_text(f"{name}: 95% prediction interval" if dash else
                           f"{name}: 95% interval"),
            showlegend=True,
        )
    fig.add_scatter(
        x=xs,
        y=[v.value for v in pts],
        mode="lines+markers",
        name=plot_text(name),
        line={"color": colour, "dash": dash, "width": 2},
        customdata=[[hover_text(v)] for v in pts],
        hovertemplate="%{y:.4g} (%{customdata[0]})<extra>" + plot_text(name) + "</extra>",
    )


def correlation_pair(v: ValueRow) -> tuple[str, str]:
    """The two measures a correlation value is about: its column x, and y of ``{"with": y}``."""
    return str(v.column), v.group[WITH]


def correlation_figure(values: Sequence[ValueRow]) -> go.Figure:
    """A symmetric heatmap of Pearson r in [-1, 1], intervals in the hover text."""
    pairs = {correlation_pair(v): v for v in values}
    names = sorted({n for pair in pairs for n in pair})
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for row in names:
        zr: list[float | None] = []
        tr: list[str] = []
        for col in names:
            v = pairs.get((row, col)) or pairs.get((col, row))
            if v is None:  # the diagonal (r = 1) is not a published value: left blank
                zr.append(None)
                tr.append("")
            else:
                zr.append(max(-1.0, min(1.0, v.value)))
                ci = (f"<br>[{v.lower:.2f}, {v.upper:.2f}]"
                      if v.lower is not None and v.upper is not None else "")
                tr.append(f"{v.value:.2f}{ci}<br>{noise_impact(v).text}")
        z.append(zr)
        text.append(tr)
    labels = [plot_text(n) for n in names]
    fig = _figure()
    fig.add_heatmap(
        z=z, x=labels, y=labels, text=text, texttemplate="%{text}",
        zmin=-1, zmax=1, colorscale=[[0, ORANGE], [0.5, "#f7f7f7"], [1, BLUE]],
        colorbar={"title": {"text": "r"}}, hovertemplate="%{y} × %{x}: %{text}<extra></extra>",
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(automargin=True)
    return fig


def by_series(values: Iterable[ValueRow]) -> dict[str, list[ValueRow]]:
    """Group values by (metric, column) into named series, keeping first-seen order."""
    out: dict[str, list[ValueRow]] = defaultdict(list)
    for v in values:
        out[metric_label(v.metric, v.column)].append(v)
    return dict(out)
