"""The planner: what a contract will buy, from public parameters only, before any file.

Noise depends on public parameters (bounds, ``max_rows_per_unit``, the ε split), means and
shares also on expected counts. :func:`predict` builds a synthetic file of the public shape
(N people, R rows each, every measure at its expected value, dimension keys and periods
spread evenly), runs the real engine on it a few times and reads each headline value's 95%
interval half-width; :func:`solve` bisects over ε for a target half-width.

    >>> round_sig(1.2041, up=True), round_sig(1.2041, up=False)  # the ε a search reports
    (1.21, 1.2)
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from analytics.analyses import plan_analyses
from analytics.bounds import auto_measures, auto_share
from analytics.vocabulary import QUANTILE_PREFIX, Kind, Metric
from privacy.budget import like, zcdp_rho_for
from privacy.contract import Budget, ColumnType, Contract, Granularity, Role, period_index
from privacy.errors import PipelineError
from privacy.results import ReleaseSet
from privacy.validation.conformance import DTYPES

#: engine runs per prediction: the median half-width over them
DEFAULT_RUNS = 5
#: the values each kind of analysis is judged by (other kinds: every value with an interval)
HEADLINE: dict[str, list[str]] = {
    Kind.SUMMARY: [Metric.COUNT, Metric.UNITS, Metric.SUM, Metric.MEAN],
    Kind.DISTRIBUTION: [Metric.HISTOGRAM, "quantiles"],
    Kind.COMPARISON: [Metric.MEAN, Metric.DIFFERENCE, Metric.RATIO],
    Kind.TREND: [Metric.COUNT, Metric.MEAN],
    Kind.FORECAST: [Metric.FORECAST],
    Kind.CORRELATION: [Metric.PEARSON_R],
}
#: what a ``--target`` without ``.metric`` aims at, in order of preference
TARGET_METRICS = {Kind.SUMMARY.value: (Metric.MEAN, Metric.COUNT), Kind.COMPARISON.value: (Metric.MEAN,)}
SPREAD = "depends on the spread of the data, which the planner does not assume"
#: the smallest ε a target search tries; how close its two ends get (a ratio above the
#: noise of a median of a few half-widths); how many times more runs check the two ends
EPS_MIN, EPS_TOL, CHECK_RUNS = 1e-4, 1.03, 3


class PlanError(PipelineError):
    """A plan cannot be made: a bad assumption or target (public parameters only)."""

    kind = "plan"


@dataclass(frozen=True)
class Target:
    """A wanted half-width of an analysis's headline value: ``value`` % or absolute."""

    analysis: str
    value: float
    relative: bool


@dataclass(frozen=True)
class Assumptions:
    """The public shape a plan assumes: people, rows per person, each measure's value."""

    people: int
    rows_per_person: int
    expect: dict[str, float]
    #: measures the planner cannot predict (``bounds: auto`` without ``within``)
    unpredictable: frozenset[str] = frozenset()
    runs: int = DEFAULT_RUNS

    def rows_kept(self, contract: Contract) -> int:
        return self.people * min(self.rows_per_person, contract.max_rows_per_unit)


def _limits(contract: Contract, m: str) -> tuple[float, float] | None:
    """A measure's public bounds: typed in, or the ``within`` of ``bounds: auto``."""
    col, auto = contract.columns[m], contract.columns[m].auto_bounds
    return col.fixed_bounds or (auto.within if auto is not None else None)


def assume(
    contract: Contract, people: int, rows_per_person: int | None = None,
    expect: dict[str, float] | None = None, runs: int = DEFAULT_RUNS,
) -> Assumptions:  # fmt: skip
    """Check the command line's numbers against the contract; fill in the defaults."""
    if people < 1 or runs < 1:
        raise PlanError("--people and --runs must be at least 1")
    rows = rows_per_person or (1 if contract.rows_are_people else contract.max_rows_per_unit)
    if contract.rows_are_people and rows != 1:
        raise PlanError("the contract says rows_are_people: one row per person, not more")
    if people * rows > contract.max_rows_per_file:
        raise PlanError(
            f"{people} people x {rows} rows = {people * rows} rows, more than the contract's "
            f"max_rows_per_file={contract.max_rows_per_file}: such a file would be refused"
        )
    given = dict(expect or {})
    for m in set(given) - set(contract.measures):
        raise PlanError(f"--expect {m}: not a measure of the contract ({_names(contract.measures)})")
    unknown = frozenset(m for m in contract.measures if _limits(contract, m) is None)
    values = {m: 0.5 for m in unknown}  # inside the placeholder bounds (0, 1), never read
    for m in set(contract.measures) - unknown:
        lo, hi = _limits(contract, m) or (0.0, 1.0)
        values[m] = v = given.get(m, (lo + hi) / 2)
        if not lo <= v <= hi:
            raise PlanError(f"--expect {m}={v:g}: outside its bounds [{lo:g}, {hi:g}]")
    return Assumptions(people, rows, {m: values[m] for m in contract.measures}, unknown, runs)


def _names(names: list[str]) -> str:
    return ", ".join(names) or "none"


def _period_values(contract: Contract, t: str) -> pl.Series:
    """One time value inside each public period of ``t`` (a placeholder without periods)."""
    col = contract.columns[t]
    dtype = DTYPES[col.type]
    rng = col.periods
    if rng is None:
        return pl.Series([2000 if col.type is ColumnType.INTEGER else date(2000, 1, 1)]).cast(dtype)
    if isinstance(rng.start, int) and isinstance(rng.end, int):
        return pl.Series(list(range(rng.start, rng.end + 1)), dtype=pl.Int64)
    assert isinstance(rng.start, date) and isinstance(rng.end, date)
    gran, day = col.granularity or Granularity.MONTH, rng.start
    firsts: dict[int, date] = {}
    while day <= rng.end:
        firsts.setdefault(period_index(day, gran), day)
        day += timedelta(days=1)
    days = list(firsts.values())
    if col.type is ColumnType.DATETIME:
        return pl.Series([datetime(d.year, d.month, d.day) for d in days], dtype=dtype)
    return pl.Series(days, dtype=pl.Date)


def _spread(values: pl.Series, index: pl.Expr) -> pl.Expr:
    return pl.lit(values).gather(index % values.len())


def _column(contract: Contract, a: Assumptions, name: str) -> pl.Expr:
    col = contract.columns[name]
    row, person = pl.col("__row"), pl.col("__row") // a.rows_per_person
    dtype = DTYPES[col.type]
    if name == contract.privacy_unit:
        token = pl.lit("pa1_") + person.cast(pl.String).str.zfill(64)
        return token if dtype == pl.String else person.cast(dtype)
    if col.role is Role.MEASURE:
        v = a.expect[name]
        if col.type is ColumnType.INTEGER:  # floor((i+1)v) - floor(iv): averages v exactly
            return (((row + 1) * v).floor() - (row * v).floor()).cast(pl.Int64)
        return pl.lit(v, pl.Float64)
    if col.role is Role.TIME:
        return _spread(_period_values(contract, name), row)
    if col.role is Role.DIMENSION and col.keys is not None:
        keys = pl.Series(col.keys, dtype=pl.String).cast(dtype, strict=False)
        return _spread(keys, person)
    zero: dict[ColumnType, Any] = {ColumnType.STRING: "x", ColumnType.BOOLEAN: False,
                                   ColumnType.DATE: date(2000, 1, 1)}  # fmt: skip
    return pl.lit(zero.get(col.type, 0)).cast(dtype)


def synthetic_frame(contract: Contract, a: Assumptions) -> pl.DataFrame:
    """The release input of a file of the assumed shape, built from the contract alone:
    every column masking keeps, pseudonyms as synthetic tokens."""
    kept = [n for n, c in contract.columns.items() if c.mask_action != "drop"]
    rows = a.people * a.rows_per_person
    base = pl.LazyFrame({"__row": pl.int_range(rows, eager=True, dtype=pl.Int64)})
    # with_columns broadcasts the constant columns to every row
    return base.with_columns(_column(contract, a, n).alias(n) for n in kept).select(kept).collect()


# --------------------------------------------------------------------------- prediction


@dataclass(frozen=True)
class Predicted:
    """One headline value's expected 95% half-width (None: not predicted, see ``note``)."""

    analysis: str
    kind: str
    metric: str
    column: str | None
    per: str | None  # the group it is per (team, finish_date, bin, ...), None: overall
    expected: float | None
    half_width: float | None
    note: str | None = None

    @property
    def relative(self) -> float | None:
        hw, e = self.half_width, self.expected
        return hw / abs(e) if hw is not None and e else None


@dataclass
class Plan:
    """What one release buys under a contract, on the assumed file."""

    contract: Contract
    assumptions: Assumptions
    epsilon: float
    delta: float
    values: list[Predicted]
    split: list[tuple[str, float, float]]  # (analysis, ε, δ); post-processing costs 0
    notes: list[str] = field(default_factory=list)

    @property
    def releases_allowed(self) -> int:
        return releases_allowed(self.contract, self.epsilon)


def per_release(contract: Contract) -> float:
    """What one release spends as the contract says: ε, or ρ under zCDP."""
    return contract.budget.release_loss.amount


def budget_at(contract: Contract, amount: float) -> Budget:
    """The contract's budget with ε (ρ under zCDP) per release ``amount``."""
    field = "rho_per_release" if contract.budget.accounting == "zcdp" else "epsilon_per_release"
    return contract.budget.model_copy(update={field: amount})


def release_delta(contract: Contract, epsilon: float) -> float:
    """δ per release when ε (ρ under zCDP) per release is ``epsilon`` (as
    ``Budget.release_delta``)."""
    return budget_at(contract, epsilon).release_delta


def _fixed(contract: Contract, a: Assumptions) -> tuple[Contract, frozenset[str], float]:
    """The contract with ``bounds: auto`` typed in (``within``, else placeholder bounds),
    those measures, and the share of ε their estimation takes."""
    autos = auto_measures(contract)
    if not autos:
        return contract, frozenset(), 0.0
    columns = dict(contract.columns)
    for m in autos:
        columns[m] = columns[m].model_copy(update={"bounds": _limits(contract, m) or (0.0, 1.0)})
    fixed = contract.model_copy(update={"columns": columns})
    return fixed, frozenset(autos), auto_share(contract)


def _family(metric: str) -> str:
    return "quantiles" if metric.startswith(QUANTILE_PREFIX) else metric


def _half_widths(rs: ReleaseSet) -> dict[tuple[str, str, str | None], list[float | None]]:
    out: dict[tuple[str, str, str | None], list[float | None]] = defaultdict(list)
    for r in rs.releases:
        for v in r.values:
            hw = None if v.lower is None or v.upper is None else (v.upper - v.lower) / 2
            out[(r.name, _family(v.metric), v.column)].append(hw)
    return out


def predict(
    contract: Contract, a: Assumptions, epsilon: float | None = None,
    frame: pl.DataFrame | None = None,
) -> Plan:  # fmt: skip
    """Run the engine ``a.runs`` times on the synthetic file at ε per release ``epsilon``
    (default the contract's) and read the median half-width of every headline value."""
    eps = per_release(contract) if epsilon is None else epsilon
    delta = release_delta(contract, eps)
    fixed, estimated, share = _fixed(contract, a)
    frame = synthetic_frame(fixed, a) if frame is None else frame
    loss = like(contract.budget.release_loss, eps * (1 - share), delta)
    plan = plan_analyses(frame.lazy(), fixed, loss, estimated=estimated)
    try:
        sets = [plan.run() for _ in range(a.runs)]
    finally:
        plan.close()
    split = [(r.name, r.loss.amount if r.loss else 0.0, r.loss.delta if r.loss else 0.0)
             for r in sets[0].releases]  # fmt: skip
    if share:
        split.insert(0, ("bounds (auto)", eps * share, 0.0))
    values = _predicted(contract, a, sets)
    return Plan(contract, a, eps, delta, values, split, _notes(contract, a, estimated))


def _predicted(contract: Contract, a: Assumptions, sets: list[ReleaseSet]) -> list[Predicted]:
    runs = [_half_widths(rs) for rs in sets]
    kinds = {r.name: str(r.analysis) for r in sets[0].releases}
    groups: dict[tuple[str, str, str | None], dict[str, str]] = {}
    for rs in sets:
        for r in rs.releases:
            for v in r.values:
                groups.setdefault((r.name, _family(v.metric), v.column), v.group)
    out = []
    for key in dict.fromkeys(k for run in runs for k in run):
        name, metric, column = key
        kind = kinds[name]
        if kind in (Kind.QUALITY, Kind.BOUNDS) or metric not in HEADLINE.get(kind, [metric]):
            continue
        group = groups.get(key, {})
        per = _per(group)
        note = _why_not(contract, a, metric, column, group)
        hw = None
        if note is None:
            pick = max if metric == Metric.HISTOGRAM else statistics.median  # empty bins clip at 0
            each = [pick(ws) for run in runs if (ws := [w for w in run.get(key, []) if w is not None])]
            hw = statistics.median(each) if each else None
            note = None if each else "withheld in every run (too noisy to publish)"
        expected = _expected(contract, a, metric, column, _n_groups(contract, group))
        out.append(Predicted(name, kind, metric, column, per, expected, hw, note))
    for r in sets[0].releases:  # a correlation withheld on the constant synthetic file
        if r.analysis == Kind.CORRELATION and not r.values:
            out.append(Predicted(r.name, r.analysis, Metric.PEARSON_R, None, None, None, None, SPREAD))
    return out


def _per(group: dict[str, str]) -> str | None:
    """What a grouped value is per: ``team``, ``team pair`` (a contrast), ``bin``."""
    keys = [k for k in group if not k.endswith("_vs")]
    return (" ".join(keys) + (" pair" if len(keys) < len(group) else "")) if keys else None


def _n_groups(contract: Contract, group: dict[str, str]) -> int:
    """How many groups share the rows: public keys or periods (evenly spread)."""
    n = 1
    for g in group:
        col = contract.columns.get(g)
        if col is not None and (col.keys is not None or col.periods is not None):
            n *= len(col.keys) if col.keys is not None else len(_period_values(contract, g))
    return n


def _why_not(contract: Contract, a: Assumptions, metric: str, column: str | None,
             group: dict[str, str]) -> str | None:  # fmt: skip
    if metric in ("quantiles", Metric.PEARSON_R):
        return SPREAD
    if column in a.unpredictable:
        return f"{column} has bounds: auto without within: no public bounds to predict from"
    for g in group:
        col = contract.columns.get(g)
        if col is not None and col.keys is None and col.periods is None and g != "bin":
            return f"the groups of {g} are private (no public keys): their sizes are unknown"
    return None


def _expected(contract: Contract, a: Assumptions, metric: str, column: str | None,
              n_groups: int) -> float | None:  # fmt: skip
    """The value the release would show without noise on the assumed file."""
    rows = a.rows_kept(contract) / max(n_groups, 1)
    value = a.expect.get(column) if column is not None else None
    if metric in (Metric.COUNT, Metric.PRESENT) or (metric == Metric.FORECAST and value is None):
        return rows
    if metric == Metric.UNITS:
        return float(a.people)
    if metric == Metric.SUM and value is not None:
        return rows * value
    if metric in (Metric.MEAN, Metric.FORECAST):
        return value
    return 1.0 if metric == Metric.RATIO else None


def _notes(contract: Contract, a: Assumptions, estimated: frozenset[str]) -> list[str]:
    k = contract.max_rows_per_unit
    notes = [f"{a.rows_per_person} rows per person is more than max_rows_per_unit={k}: the "
             "release leaves the extra rows out at random"] if a.rows_per_person > k else []  # fmt: skip
    return notes + [f"{m} has bounds: auto: predicted with its public within limits, an upper "
                    "bound (each release estimates narrower ones)"
                    for m in sorted(estimated - a.unpredictable)]  # fmt: skip


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Solved:
    """The ε per release a target needs: ``epsilon`` reaches it, ``below`` does not."""

    target: Target
    reached: bool
    epsilon: float  # reaching ε (unreached: the best ε tried, the cap)
    half_width: float  # at ``epsilon`` (relative targets: a fraction)
    below: float | None
    below_half_width: float | None
    releases_allowed: int | None


def target_rows(plan: Plan, target: Target) -> list[Predicted]:
    """The predicted values ``target`` aims at; PlanError if there are none."""
    names = list(dict.fromkeys(v.analysis for v in plan.values))
    name, metric = target.analysis, None
    if name not in names and "." in name and name.rsplit(".", 1)[0] in names + list(Kind):
        name, metric = name.rsplit(".", 1)
    if name not in names:
        same = [n for n in names if n.split(":")[0] == name]
        if len(same) != 1:
            what = "names several analyses" if same else "no such analysis"
            raise PlanError(f"target '{target.analysis}': {what}; the contract's analyses "
                            f"are {_names(names)}")  # fmt: skip
        name = same[0]
    mine = [v for v in plan.values if v.analysis == name]
    wanted = [metric] if metric else [*TARGET_METRICS.get(mine[0].kind, ()), mine[0].metric]
    for m in wanted:
        rows = [v for v in mine if v.metric == m and v.half_width is not None]
        if target.relative:
            rows = [v for v in rows if v.relative is not None]
        if rows:
            return rows
    have = _names(list(dict.fromkeys(v.metric for v in mine if v.half_width is not None)))
    how = "a relative" if target.relative else "an absolute"
    raise PlanError(f"target '{target.analysis}': no predicted {metric or 'headline'} value of "
                    f"{name} for {how} target; predicted: {have}")  # fmt: skip


def _worst(plan: Plan, target: Target) -> float:
    rows = target_rows(plan, target)
    return max((v.relative if target.relative else v.half_width) or 0.0 for v in rows)


def solve(contract: Contract, a: Assumptions, target: Target) -> Solved:
    """Bisect over ε per release (re-planning each time) for the smallest ε whose headline
    half-width meets ``target``, up to the cap ``epsilon_cap``; the two ends found are
    checked again with ``CHECK_RUNS`` times the runs."""
    want = target.value / 100 if target.relative else target.value
    frame, seen = synthetic_frame(_fixed(contract, a)[0], a), {}

    def f(eps: float, runs: int = a.runs) -> float:
        if (eps, runs) not in seen:
            more = replace(a, runs=runs)
            seen[(eps, runs)] = _worst(predict(contract, more, eps, frame), target)
        return seen[(eps, runs)]

    cap, eps0 = per_release_cap(contract), per_release(contract)
    # the 1/ε law of Laplace noise; under zCDP the 1/√ρ law of Gaussian noise
    power = 2.0 if contract.budget.accounting == "zcdp" else 1.0
    guess = min(max(eps0 * (f(eps0) / want) ** power, EPS_MIN), cap)
    hi, lo = min(guess * 1.25, cap), guess / 1.25
    while f(hi) > want:
        if hi >= cap:
            return Solved(target, False, cap, f(cap), None, None, None)
        lo, hi = hi, min(hi * 2, cap)
    while f(lo) <= want:
        if lo <= EPS_MIN:
            return Solved(target, True, lo, f(lo), None, None, releases_allowed(contract, lo))
        hi, lo = lo, max(lo / 2, EPS_MIN)
    while hi / lo > EPS_TOL:
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if f(mid) <= want else (mid, hi)
    runs = a.runs * CHECK_RUNS
    hi, lo = min(round_sig(hi, up=True), cap), round_sig(lo, up=False)
    while f(hi, runs) > want and hi < cap:  # the noise of the medians: step outwards
        hi = min(round_sig(hi * EPS_TOL, up=True), cap)
    while f(lo, runs) <= want and lo > EPS_MIN:
        lo = round_sig(lo / EPS_TOL, up=False)
    ok = f(hi, runs) <= want
    return Solved(target, ok, hi, f(hi, runs), lo, f(lo, runs), releases_allowed(contract, hi))


def round_sig(x: float, up: bool) -> float:
    """``x`` to 3 significant digits, up (an ε that reaches) or down (one that misses)."""
    step = 10 ** (math.floor(math.log10(x)) - 2)
    n = math.ceil(x / step - 1e-9) if up else math.floor(x / step + 1e-9)
    return float(f"{n * step:.3g}")


def releases_allowed(contract: Contract, epsilon: float) -> int:
    """How many releases at ``epsilon`` (ρ under zCDP) each the cap pays for (as
    ``Budget``)."""
    return max(budget_at(contract, epsilon).releases_allowed, 1)


def per_release_cap(contract: Contract) -> float:
    """The most one release may spend: the ε cap, or under zCDP the ρ whose conversion at
    half the δ cap reaches it."""
    if contract.budget.accounting == "zcdp":
        return zcdp_rho_for(contract.budget.epsilon_cap, contract.budget.delta / 2)
    return contract.budget.epsilon_cap
