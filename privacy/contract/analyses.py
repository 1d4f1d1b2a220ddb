"""The analyses a contract asks for, one settings model per kind, and the registry of
extra kinds (``register_analysis``) that release engines add.

>>> DistributionAnalysis(measure="hours").quantiles
[0.25, 0.5, 0.75]
>>> from pydantic import TypeAdapter
>>> TypeAdapter(Analysis).validate_python({"kind": "trend", "time": "day"}).kind
'trend'
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from privacy.contract.enums import _Strict


class _Weighted(_Strict):
    #: this analysis's share of each release's ε relative to the others' (default 1: equal
    #: shares); e.g. 3 gives it three times the ε of an analysis of weight 1
    weight: float = Field(default=1.0, gt=0, le=1000, allow_inf_nan=False)


class SummaryAnalysis(_Weighted):
    kind: Literal["summary"] = "summary"
    #: measures to summarise; default: every measure
    measures: list[str] | None = None


class DistributionAnalysis(_Weighted):
    kind: Literal["distribution"] = "distribution"
    measure: str
    #: histogram edges (public); default: 10 equal bins over the measure's bounds
    bins: list[float] | None = None
    quantiles: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])


class ComparisonAnalysis(_Weighted):
    kind: Literal["comparison"] = "comparison"
    measure: str
    by: str


class TrendAnalysis(_Weighted):
    kind: Literal["trend"] = "trend"
    time: str
    measures: list[str] = Field(default_factory=list)


class CorrelationAnalysis(_Weighted):
    kind: Literal["correlation"] = "correlation"
    measures: list[str] = Field(min_length=2)


class ForecastAnalysis(_Weighted):
    kind: Literal["forecast"] = "forecast"
    time: str
    measure: str | None = None  # None: forecast the count
    horizon: int = Field(default=3, ge=1, le=24)


_BUILTIN_KINDS = ("summary", "distribution", "comparison", "trend", "correlation", "forecast")


class ExtraAnalysis(BaseModel):
    """An analysis of a kind registered by a release engine (``register_analysis``): its
    settings are checked against the model registered for the kind."""

    model_config = ConfigDict(extra="allow", frozen=True)

    # The schema says "any kind but the built-in ones", so editors see exactly one match.
    kind: str = Field(json_schema_extra={"not": {"enum": list(_BUILTIN_KINDS)}})

    @model_validator(mode="after")
    def _registered(self) -> ExtraAnalysis:
        model = _EXTRA_KINDS.get(self.kind)
        if model is None:
            known = ", ".join(sorted([*_BUILTIN_KINDS, *_EXTRA_KINDS]))
            raise ValueError(f"unknown analysis kind '{self.kind}' (known: {known})")
        model.model_validate(self.model_dump())
        return self


_EXTRA_KINDS: dict[str, type[BaseModel]] = {}


def register_analysis(kind: str, model: type[BaseModel]) -> None:
    """Let contracts declare analyses of ``kind``, with settings checked by ``model``."""
    if kind in _BUILTIN_KINDS:
        raise ValueError(f"analysis kind '{kind}' is built in")
    _EXTRA_KINDS[kind] = model


def _analysis_tag(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if kind in _BUILTIN_KINDS else "extra"


Analysis = Annotated[
    Annotated[SummaryAnalysis, Tag("summary")]
    | Annotated[DistributionAnalysis, Tag("distribution")]
    | Annotated[ComparisonAnalysis, Tag("comparison")]
    | Annotated[TrendAnalysis, Tag("trend")]
    | Annotated[CorrelationAnalysis, Tag("correlation")]
    | Annotated[ForecastAnalysis, Tag("forecast")]
    | Annotated[ExtraAnalysis, Tag("extra")],
    Discriminator(_analysis_tag),
]


def _default_analyses() -> list[Analysis]:
    return [SummaryAnalysis()]
