"""Look and feel: a dash-bootstrap-components theme and a colour-blind-safe palette.

The palette is Okabe & Ito's (2008), distinguishable under the common forms of colour
blindness; it is the default colourway of every chart, and status colours reuse it.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

#: Okabe-Ito, without black (kept for text)
OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
)
BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION, YELLOW = OKABE_ITO

TEMPLATE_NAME = "privacy_analytics"


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def band_colour(hex_colour: str) -> str:
    """The translucent fill of an interval band drawn around a line of this colour."""
    return _rgba(hex_colour, 0.18)


def install_template() -> None:
    """Register the plotly template every dashboard figure uses (idempotent)."""
    if TEMPLATE_NAME in pio.templates:
        return
    template = go.layout.Template()
    template.layout = go.Layout(
        colorway=list(OKABE_ITO),
        font={"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13},
        paper_bgcolor="white",
        plot_bgcolor="white",
        margin={"l": 48, "r": 16, "t": 36, "b": 48},
        xaxis={"showgrid": False, "linecolor": "#ced4da", "ticks": "outside"},
        yaxis={"gridcolor": "#e9ecef", "zerolinecolor": "#adb5bd"},
        hoverlabel={"font": {"size": 12}},
        legend={"orientation": "h", "y": -0.2},
    )
    pio.templates[TEMPLATE_NAME] = template
