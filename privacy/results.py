"""What a DP release produces: typed, counts-and-aggregates-only values.

These are the only objects derived from data that leave the pipeline besides masked
Parquet and counts-only reports. The aggregate store persists them as they are.

>>> from privacy.budget import PrivacyLoss
>>> mean = PublishedValue("mean", 3.2, lower=2.9, upper=3.5, scale=0.1, column="hours")
>>> Release("summary", "summary:hours", "laplace", PrivacyLoss(0.5), [mean]).values[0].metric
'mean'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from privacy.budget import Loss

AnalysisKind = Literal[
    "summary", "distribution", "comparison", "trend", "correlation", "forecast", "quality", "bounds"
]


@dataclass(frozen=True)
class PublishedValue:
    """One published number.

    ``group`` maps group columns to keys (public keys from the contract or keys that passed
    OpenDP's threshold); empty for ungrouped values. ``metric`` is e.g. "count", "sum",
    "mean", "quantile_0.5", "histogram", "difference", "ratio", "pearson_r", "forecast".
    ``lower``/``upper`` is the 95% interval; ``scale`` the noise scale (None for values that
    are pure post-processing of other releases, such as a forecast).
    """

    metric: str
    value: float
    lower: float | None = None
    upper: float | None = None
    scale: float | None = None
    column: str | None = None
    group: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Release:
    """One analysis of a contract released on one file."""

    analysis: AnalysisKind
    name: str  # stable id within the contract, e.g. "comparison:efficiency:team"
    mechanism: str  # e.g. "laplace", "gaussian", "post-processing"
    loss: Loss | None  # None for post-processing (no extra spend)
    values: list[PublishedValue]
    insights: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseSet:
    """Everything released for one object version, with its total privacy loss."""

    dataset: str
    contract_version: int
    loss: Loss
    releases: list[Release]
