"""Dataset contracts: what each column is, how it is masked, and what may be released.

A contract is a YAML file, ``<contracts dir>/<dataset>.yaml``, that a data owner reads and
reviews. Everything the DP engine needs that must not come from the data (clamping bounds,
public group keys, the privacy unit, rows per unit, budget) comes from here.

    dataset: employees
    privacy_unit: employee_id        # or `rows_are_people: true` when each row is a person
    max_rows_per_unit: 12
    budget: {epsilon_cap: 20, delta: 1.0e-6, epsilon_per_release: 1.0}
    columns:
      employee_id: {role: identifier, type: string, action: pseudonymize}
      email:       {role: identifier, type: string}            # dropped by default
      team:        {role: dimension, type: string, keys: [Atlas, Borealis]}
      efficiency:  {role: measure, type: float, bounds: [0, 2]}
      finish_date: {role: time, type: date, granularity: month}
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from privacy.errors import ContractError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class Role(StrEnum):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    DIMENSION = "dimension"
    MEASURE = "measure"
    TIME = "time"
    TEXT = "text"
    IGNORE = "ignore"


class ColumnType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"


class Missing(StrEnum):
    """What to do with an empty value (and with a bad value, once set to null)."""

    #: keep the null: a measure's sums and means use the values that are there, and the
    #: share missing is released next to them
    ALLOW = "allow"
    REJECT = "reject"  # any null rejects the file
    DROP_ROW = "drop_row"  # rows with a null here are dropped (counted in the report)
    #: a measure's null counts as the public ``fill`` value (for data where a blank really
    #: means a value, such as 0 hours)
    FILL = "fill"


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


#: at most this many calendar periods in a time column's public ``periods`` range
MAX_PERIODS = 400


def period_index(value: date | int, granularity: Granularity | None) -> int:
    """The calendar period of ``value`` as an integer; consecutive periods differ by 1.

    day: date ordinal; week: Monday-based weeks; month: year*12 + month-1; quarter:
    year*4 + quarter-1; year: the year. Integer time values are their own period.
    """
    if isinstance(value, int):
        return value
    gran = granularity or Granularity.MONTH
    if gran is Granularity.DAY:
        return value.toordinal()
    if gran is Granularity.WEEK:
        return (value.toordinal() - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
    if gran is Granularity.MONTH:
        return value.year * 12 + value.month - 1
    if gran is Granularity.QUARTER:
        return value.year * 4 + (value.month - 1) // 3
    return value.year


class PeriodRange(_Strict):
    """The public span of a time column, both ends included: its calendar periods (at the
    column's granularity) are public group keys for trends; rows outside are not released.

    ``periods: {start: 2025-01-01, end: 2026-12-31}`` (integer time: ``{start: 2000, end:
    2024}``)."""

    start: date | int
    end: date | int

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRange:
        if isinstance(self.start, int) != isinstance(self.end, int):
            raise ValueError("periods.start and periods.end must both be dates or both integers")
        if not self.start < self.end:  # type: ignore[operator]
            raise ValueError("periods.start must be before periods.end")
        return self


# --------------------------------------------------------------------------- generalization


class BandGeneralization(_Strict):
    """Replace a number by the lower edge of its band: age 37 with width 10 -> 30."""

    kind: Literal["band"] = "band"
    width: float = Field(gt=0)
    origin: float = 0.0


class DateGeneralization(_Strict):
    """Truncate a date to the start of its month or year."""

    kind: Literal["date"] = "date"
    to: Literal["month", "quarter", "year"] = "month"


class PrefixGeneralization(_Strict):
    """Keep the first characters of a code (postcode 19104 -> 191)."""

    kind: Literal["prefix"] = "prefix"
    length: int = Field(ge=0, le=32)


class TopCodeGeneralization(_Strict):
    """Clamp a number into [bottom, top] (top-coding of rare extremes)."""

    kind: Literal["top_code"] = "top_code"
    top: float | None = None
    bottom: float | None = None


Generalization = Annotated[
    BandGeneralization | DateGeneralization | PrefixGeneralization | TopCodeGeneralization,
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- columns


class AutoBounds(_Strict):
    """Clamping bounds estimated under DP at each release, instead of typed in.

    ``bounds: auto`` (or ``bounds: {auto: true, within: [lo, hi]}`` to cap the search with
    public limits). Each release first spends ``share`` of its ε on a DP histogram of the
    measure over a public, log-spaced grid of candidate values (inside ``within`` when
    given), takes the range holding all but a small tail of the values, and releases with
    it; the estimated bounds are DP outputs and are published with the release.
    """

    auto: Literal[True] = True
    within: tuple[float, float] | None = None
    share: float = Field(default=0.1, gt=0, lt=0.5)

    @field_validator("within")
    @classmethod
    def _ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not (math.isfinite(v[0]) and math.isfinite(v[1]) and v[0] < v[1]):
            raise ValueError("within must be two finite numbers, the lower first")
        return v


class Column(_Strict):
    role: Role
    type: ColumnType = ColumnType.STRING
    description: str | None = None
    missing: Missing = Missing.ALLOW
    #: identifiers and text: what masking does with the column
    action: Literal["drop", "pseudonymize", "keep"] | None = None
    #: identifiers: values must be unique within a file
    unique: bool = False
    #: dimensions: the public list of group keys (absent = keys are private)
    keys: list[str] | None = None
    #: measures: public clamping bounds [lower, upper], or ``auto`` (estimated under DP
    #: at each release, see :class:`AutoBounds`); required for measures
    bounds: tuple[float, float] | AutoBounds | Literal["auto"] | None = None
    #: measures with ``missing: fill``: the public value a null counts as in releases
    fill: float | None = None
    #: time: period used for trends
    granularity: Granularity | None = None
    #: time: the public range of periods trends release (public keys; rows outside are
    #: dropped before release). Without it, periods are released only above a threshold.
    periods: PeriodRange | None = None
    #: time stored as text: strptime format, e.g. "%Y-%m-%d"
    format: str | None = None
    #: quasi-identifiers (and dimensions): generalization applied when masking
    generalize: Generalization | None = None

    @field_validator("bounds")
    @classmethod
    def _finite_ordered(
        cls, v: tuple[float, float] | AutoBounds | Literal["auto"] | None
    ) -> tuple[float, float] | AutoBounds | None:
        if v is None or isinstance(v, AutoBounds):
            return v
        if v == "auto":
            return AutoBounds()
        lo, hi = v
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("bounds must be finite numbers")
        if lo >= hi:
            raise ValueError("lower bound must be below upper bound")
        return v

    @field_validator("keys")
    @classmethod
    def _unique_keys(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if len(set(v)) != len(v):
                raise ValueError("keys must be distinct")
            if not v:
                raise ValueError("keys, when given, must list at least one key")
        return v

    @model_validator(mode="after")
    def _role_rules(self) -> Column:
        if self.role is Role.MEASURE:
            if self.bounds is None:
                raise ValueError(
                    "a measure needs bounds: public ones, bounds: [lower, upper], or bounds: "
                    "auto to estimate them under DP at each release"
                )
            if self.type not in (ColumnType.INTEGER, ColumnType.FLOAT):
                raise ValueError("a measure must have type integer or float")
            limits = self.fixed_bounds or (
                self.auto_bounds.within if self.auto_bounds is not None else None
            )
            if self.fill is not None and limits and not (limits[0] <= self.fill <= limits[1]):
                raise ValueError("fill must lie inside bounds")
            if (self.missing is Missing.FILL) != (self.fill is not None):
                raise ValueError(
                    "missing: fill needs a public fill value (fill: 0), and fill needs "
                    "missing: fill; without them means use the values that are there"
                )
        elif self.missing is Missing.FILL or self.fill is not None:
            raise ValueError("missing: fill and fill are only allowed on measures")
        elif self.bounds is not None:
            raise ValueError("bounds are only allowed on measures")
        if self.role is Role.TIME and self.type not in (
            ColumnType.DATE,
            ColumnType.DATETIME,
            ColumnType.INTEGER,
        ):
            raise ValueError("a time column must have type date, datetime or integer")
        if self.periods is not None:
            if self.role is not Role.TIME:
                raise ValueError("periods are only allowed on time columns")
            is_int = isinstance(self.periods.start, int)
            if is_int != (self.type is ColumnType.INTEGER):
                raise ValueError("periods must be integers for integer time, dates otherwise")
            n = (
                period_index(self.periods.end, self.granularity)
                - period_index(self.periods.start, self.granularity)
                + 1
            )
            if n > MAX_PERIODS:
                raise ValueError(
                    f"periods span {n} {(self.granularity or Granularity.MONTH).value}s; at "
                    f"most {MAX_PERIODS} are allowed: narrow the range or coarsen granularity"
                )
        if self.keys is not None and self.role is not Role.DIMENSION:
            raise ValueError("keys are only allowed on dimensions")
        if self.action == "keep" and self.role is Role.IDENTIFIER:
            raise ValueError("an identifier cannot be kept in clear: use drop or pseudonymize")
        g = self.generalize
        numeric = (ColumnType.INTEGER, ColumnType.FLOAT)
        if isinstance(g, BandGeneralization | TopCodeGeneralization) and self.type not in numeric:
            raise ValueError(f"generalize kind '{g.kind}' needs type integer or float")
        temporal = (ColumnType.DATE, ColumnType.DATETIME)
        if isinstance(g, DateGeneralization) and self.type not in temporal:
            raise ValueError("generalize kind 'date' needs type date or datetime")
        return self

    @property
    def fixed_bounds(self) -> tuple[float, float] | None:
        """The public bounds typed into the contract (None for ``bounds: auto``)."""
        b = self.bounds
        return (float(b[0]), float(b[1])) if isinstance(b, tuple) else None

    @property
    def auto_bounds(self) -> AutoBounds | None:
        """The ``bounds: auto`` settings (None for typed-in bounds)."""
        return self.bounds if isinstance(self.bounds, AutoBounds) else None

    @property
    def mask_action(self) -> Literal["drop", "pseudonymize", "keep"]:
        """What masking does with this column, defaults included."""
        if self.action is not None:
            return self.action
        if self.role in (Role.IDENTIFIER, Role.TEXT, Role.IGNORE):
            return "drop"
        return "keep"


# --------------------------------------------------------------------------- dataset level


class Budget(_Strict):
    """Per-dataset privacy budget. ε and δ are finite and positive (δ may be 0 only if no
    analysis needs private group keys)."""

    #: total ε the dataset may spend (per window under policy "window")
    epsilon_cap: float = Field(gt=0, allow_inf_nan=False)
    #: total δ the dataset may spend, like epsilon_cap
    delta: float = Field(default=1e-6, ge=0, lt=1, allow_inf_nan=False)
    #: ε spent on each file, split over its analyses
    epsilon_per_release: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    #: δ spent on each file; default: δ cap shared evenly by the releases ε allows
    delta_per_release: float | None = Field(default=None, ge=0, lt=1, allow_inf_nan=False)
    policy: Literal["lifetime", "window"] = "lifetime"
    #: for policy "window": the calendar period after which spending resets
    window: Literal["day", "week", "month", "quarter", "year"] | None = None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if self.epsilon_per_release > self.epsilon_cap:
            raise ValueError("epsilon_per_release cannot exceed epsilon_cap")
        if self.policy == "window" and self.window is None:
            raise ValueError("policy 'window' needs window: day|week|month|quarter|year")
        if self.delta_per_release is not None and self.delta_per_release > self.delta:
            raise ValueError("delta_per_release cannot exceed delta (the δ cap)")
        return self

    @property
    def releases_allowed(self) -> int:
        """How many files the ε cap pays for."""
        return max(int(self.epsilon_cap / self.epsilon_per_release + 1e-9), 1)

    @property
    def release_delta(self) -> float:
        """δ spent on each file (so that ε, not δ, is what runs out)."""
        if self.delta_per_release is not None:
            return self.delta_per_release
        return self.delta / self.releases_allowed


class Anonymity(_Strict):
    k: int = Field(default=1, ge=1)
    #: quasi-identifier columns; default: every column with role quasi_identifier
    quasi_identifiers: list[str] | None = None
    #: optional l-diversity of a sensitive column within each equivalence class
    l_diversity: LDiversity | None = None


class LDiversity(_Strict):
    column: str
    l: int = Field(ge=2)  # noqa: E741


class SummaryAnalysis(_Strict):
    kind: Literal["summary"] = "summary"
    #: measures to summarise; default: every measure
    measures: list[str] | None = None


class DistributionAnalysis(_Strict):
    kind: Literal["distribution"] = "distribution"
    measure: str
    #: histogram edges (public); default: 10 equal bins over the measure's bounds
    bins: list[float] | None = None
    quantiles: list[float] = Field(default_factory=lambda: [0.25, 0.5, 0.75])


class ComparisonAnalysis(_Strict):
    kind: Literal["comparison"] = "comparison"
    measure: str
    by: str


class TrendAnalysis(_Strict):
    kind: Literal["trend"] = "trend"
    time: str
    measures: list[str] = Field(default_factory=list)


class CorrelationAnalysis(_Strict):
    kind: Literal["correlation"] = "correlation"
    measures: list[str] = Field(min_length=2)


class ForecastAnalysis(_Strict):
    kind: Literal["forecast"] = "forecast"
    time: str
    measure: str | None = None  # None: forecast the count
    horizon: int = Field(default=3, ge=1, le=24)


Analysis = Annotated[
    SummaryAnalysis
    | DistributionAnalysis
    | ComparisonAnalysis
    | TrendAnalysis
    | CorrelationAnalysis
    | ForecastAnalysis,
    Field(discriminator="kind"),
]


def _default_analyses() -> list[Analysis]:
    return [SummaryAnalysis()]


class CsvOptions(_Strict):
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: Literal["utf8", "utf8-lossy", "latin1", "cp1252", "utf16"] = "utf8"


class Contract(_Strict):
    dataset: str
    version: int = Field(default=1, ge=1)
    description: str | None = None
    #: the column that names the person every row belongs to (the privacy unit)
    privacy_unit: str | None = None
    #: declare instead of ``privacy_unit`` that every row is a different person
    rows_are_people: bool = False
    #: rows one person may contribute to a file; more are dropped at random before release
    max_rows_per_unit: int = Field(default=1, ge=1, le=10_000)
    #: a value that cannot be read, lies outside its public keys or is NaN/±inf: ``null``
    #: sets it to null (then the column's ``missing`` policy applies; the operator report
    #: counts it), ``reject`` refuses the whole file
    on_bad_value: Literal["null", "reject"] = "null"
    #: datasets whose contracts name the same linkage group share pseudonym tokens (the
    #: same person has the same token in each); otherwise every dataset has its own key
    linkage_group: str | None = None
    #: public upper bound on the rows of one file: OpenDP's max_length, which float sums'
    #: noise grows with; keep it tight. A larger file is refused before any release.
    max_rows_per_file: int = Field(default=10_000_000, ge=1, le=1_000_000_000)
    budget: Budget
    anonymity: Anonymity = Field(default_factory=Anonymity)
    #: columns present in a file but not in the contract: reject the file, or drop them
    extra_columns: Literal["reject", "drop"] = "reject"
    csv: CsvOptions = Field(default_factory=CsvOptions)
    columns: dict[str, Column] = Field(min_length=1)
    analyses: list[Analysis] = Field(default_factory=lambda: _default_analyses())

    @field_validator("dataset")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError("dataset names use letters, digits, '-' and '_' (at most 64)")
        return v

    @field_validator("linkage_group")
    @classmethod
    def _group_name(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.fullmatch(v):
            raise ValueError("linkage_group names use letters, digits, '-' and '_' (at most 64)")
        return v

    @model_validator(mode="after")
    def _unit(self) -> Contract:
        """Who a row belongs to is declared, never assumed (ARCHITECTURE invariant 5)."""
        if self.privacy_unit is None and not self.rows_are_people:
            raise ValueError(
                "the contract does not say whose rows these are: name the column of the "
                "person each row belongs to (privacy_unit: <column> with max_rows_per_unit: "
                "<rows one person may have in a file>), or declare rows_are_people: true if "
                "every row is a different person"
            )
        if self.privacy_unit is not None and self.rows_are_people:
            raise ValueError(
                "privacy_unit and rows_are_people: true contradict each other: keep one"
            )
        if self.privacy_unit is not None and "max_rows_per_unit" not in self.model_fields_set:
            raise ValueError(
                f"privacy_unit '{self.privacy_unit}' needs max_rows_per_unit: the most rows one "
                "person may contribute to a file (rows beyond it are dropped at random before "
                "release; the noise grows with it)"
            )
        if self.rows_are_people and self.max_rows_per_unit != 1:
            raise ValueError(
                "rows_are_people: true means one row per person: drop max_rows_per_unit, or "
                "name the person column as privacy_unit"
            )
        return self

    @model_validator(mode="after")
    def _references(self) -> Contract:
        cols = self.columns
        if self.privacy_unit is not None:
            if self.privacy_unit not in cols:
                raise ValueError(f"privacy_unit '{self.privacy_unit}' is not a declared column")
            if cols[self.privacy_unit].mask_action == "drop":
                raise ValueError(
                    f"privacy_unit '{self.privacy_unit}' must be kept or pseudonymized, "
                    "not dropped: set action: pseudonymize"
                )

        def need(name: str, roles: tuple[Role, ...], where: str) -> None:
            if name not in cols:
                raise ValueError(f"{where}: '{name}' is not a declared column")
            if cols[name].role not in roles:
                wanted = " or ".join(r.value for r in roles)
                raise ValueError(f"{where}: '{name}' must have role {wanted}")

        for qi in self.anonymity.quasi_identifiers or []:
            need(qi, (Role.QUASI_IDENTIFIER, Role.DIMENSION, Role.TIME), "anonymity")
        for i, a in enumerate(self.analyses):
            where = f"analyses.{i}"
            if isinstance(a, SummaryAnalysis):
                for m in a.measures or []:
                    need(m, (Role.MEASURE,), where)
            elif isinstance(a, DistributionAnalysis):
                need(a.measure, (Role.MEASURE,), where)
                if a.bins is not None and (len(a.bins) < 2 or sorted(a.bins) != a.bins):
                    raise ValueError(f"{where}: bins must be at least two increasing edges")
            elif isinstance(a, ComparisonAnalysis):
                need(a.measure, (Role.MEASURE,), where)
                need(a.by, (Role.DIMENSION, Role.QUASI_IDENTIFIER), where)
            elif isinstance(a, TrendAnalysis | ForecastAnalysis):
                need(a.time, (Role.TIME,), where)
                single = [a.measure] if isinstance(a, ForecastAnalysis) and a.measure else []
                ms = a.measures if isinstance(a, TrendAnalysis) else single
                for m in ms:
                    need(m, (Role.MEASURE,), where)
            elif isinstance(a, CorrelationAnalysis):
                for m in a.measures:
                    need(m, (Role.MEASURE,), where)
        return self

    # ----------------------------------------------------------------- convenience

    def columns_with(self, *roles: Role) -> list[str]:
        return [n for n, c in self.columns.items() if c.role in roles]

    @property
    def measures(self) -> list[str]:
        return self.columns_with(Role.MEASURE)

    @property
    def quasi_identifiers(self) -> list[str]:
        if self.anonymity.quasi_identifiers is not None:
            return list(self.anonymity.quasi_identifiers)
        return self.columns_with(Role.QUASI_IDENTIFIER)

    def fingerprint(self) -> str:
        """A stable hash of everything that shapes masking and DP calibration."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


Anonymity.model_rebuild()


# --------------------------------------------------------------------------- loading


def _format_errors(source: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of silently keeping the last."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}'", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def parse_contract(text: str, source: str = "<contract>") -> Contract:
    """Parse contract YAML; a broken contract raises ContractError naming file and field."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - safe loader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ContractError(f"{source}:{where} {problem}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{source}: a contract is a YAML mapping with dataset, budget, columns")
    try:
        return Contract.model_validate(data)
    except ValidationError as err:
        raise ContractError(_format_errors(source, err)) from None


def load_contract(path: Path, dataset: str | None = None) -> Contract:
    """Load and check ``path``; if ``dataset`` is given the contract must be for it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContractError(f"{path}: no such contract file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read contract ({type(exc).__name__})") from None
    contract = parse_contract(text, str(path))
    if dataset is not None and contract.dataset != dataset:
        raise ContractError(
            f"{path}: contract is for dataset '{contract.dataset}', not '{dataset}'"
        )
    return contract


def find_contract(contracts_dir: Path, dataset: str) -> Contract:
    """The contract for ``dataset`` in ``contracts_dir``, with a how-to when it is missing."""
    for suffix in (".yaml", ".yml"):
        path = contracts_dir / f"{dataset}{suffix}"
        if path.is_file():
            return load_contract(path, dataset)
    raise ContractError(
        f"no contract for dataset '{dataset}' in {contracts_dir}: draft one with "
        f"'privacy-analytics contract infer FILE --dataset {dataset} > "
        f"{contracts_dir}/{dataset}.yaml', review it, then drop the file again"
    )


def contract_json_schema() -> dict[str, Any]:
    """JSON Schema of the contract, for editors (published as contracts/contract.schema.json)."""
    return Contract.model_json_schema()
