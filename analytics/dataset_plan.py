"""What a dataset release buys, before any file: the planner (``analytics.planner``) run on
the dataset release's view of the contract, and how often the contract's schedule spends.

A dataset release over F files of N people, each with R rows per file, sees each person with
F x R rows and keeps at most ``release.max_rows_per_unit`` (K) of them: a low K leaves rows
out (a bias the truncated share discloses, and which the plan states), a high K adds noise.
Everything here comes from the contract and the numbers given, never from data.

>>> releases_per_year("0 6 * * 1"), releases_per_year(None)
(52, None)
>>> c = compare_accounting(10.0, 1e-6, 365)
>>> round(c.laplace_sd, 1), round(c.gaussian_sd, 1), c.better
(51.6, 10.9, 'zcdp')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from analytics.planner import DEFAULT_RUNS, Plan, PlanError, assume, predict
from privacy.contract import Contract


@dataclass(frozen=True)
class Accounting:
    """The noise each of ``releases`` releases gets under a lifetime cap (ε, δ), per unit of
    sensitivity: pure ε (the cap split evenly, Laplace noise) against zero-concentrated DP
    (Gaussian noise, the releases' ρ adding up, converted to (ε, δ) by OpenDP)."""

    releases: int
    epsilon_cap: float
    delta_cap: float
    #: standard deviation of a release's Laplace noise over its sensitivity (pure ε)
    laplace_sd: float
    #: the same for Gaussian noise under zCDP, with the whole δ cap spent by the conversion
    gaussian_sd: float | None
    rho_per_release: float | None

    @property
    def better(self) -> str:
        if self.gaussian_sd is None or self.laplace_sd <= self.gaussian_sd:
            return "pure"
        return "zcdp"


def _zcdp_epsilon(scale: float, releases: int, delta: float) -> float:
    """ε at ``delta`` of ``releases`` Gaussian releases of sensitivity 1 at ``scale`` (one
    release at scale / √releases has the same total ρ), by OpenDP's conversion."""
    from privacy.release._opendp import opendp

    dp = opendp()
    m = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
                           scale=scale / math.sqrt(releases))
    try:
        return float(dp.c.make_zCDP_to_approxDP(m).map(1.0).epsilon(delta))
    except dp.OpenDPException:  # so little noise that ε overflows: far over any cap
        return math.inf


def compare_accounting(epsilon_cap: float, delta_cap: float, releases: int) -> Accounting:
    """Which accounting gives ``releases`` releases less noise under the cap (see
    :class:`Accounting`); zCDP needs δ > 0."""
    releases = max(int(releases), 1)
    laplace_sd = math.sqrt(2.0) * releases / epsilon_cap
    if delta_cap <= 0:
        return Accounting(releases, epsilon_cap, delta_cap, laplace_sd, None, None)
    lo, hi = 1e-3, 1e9  # the Gaussian scale: ε falls as it grows; bisect on a log scale
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if _zcdp_epsilon(mid, releases, delta_cap) <= epsilon_cap:
            hi = mid
        else:
            lo = mid
    return Accounting(releases, epsilon_cap, delta_cap, laplace_sd, hi, 1 / (2 * hi * hi))


@dataclass(frozen=True)
class DatasetPlan:
    """A dataset release over ``files`` files: the predicted plan, the rows each person has
    over them, the share of rows the per-person bound leaves out, the releases the schedule
    makes in a year (None: no schedule, or the schedule cannot be counted here)."""

    plan: Plan
    files: int
    rows_per_person: int
    bound: int
    rows_left_out: float
    per_year: int | None

    @property
    def years_of_budget(self) -> float | None:
        """How long the ε cap lasts at the schedule, spending only on dataset releases."""
        if not self.per_year:
            return None
        return self.plan.releases_allowed / self.per_year


def releases_per_year(schedule: str | None, year: int = 2027) -> int | None:
    """How many times a cron schedule fires in a (non-leap) year, or None without one or
    without the cron library Prefect's scheduler ships with."""
    if not schedule:
        return None
    try:
        from cronsim import CronSim
    except ImportError:  # pragma: no cover - the library comes with Prefect
        return None
    n = 0
    for when in CronSim(schedule.strip(), datetime(year, 1, 1, tzinfo=UTC)):
        if when.year > year:
            return n
        n += 1
        if n > 600_000:  # more often than once a minute: stop counting
            return n
    return n


def plan_dataset_release(
    contract: Contract, people: int, files: int, rows_per_person: int | None = None,
    expect: dict[str, float] | None = None, runs: int = DEFAULT_RUNS,
) -> DatasetPlan:  # fmt: skip
    """Predict a dataset release over ``files`` files of ``people`` people with
    ``rows_per_person`` rows each per file (default: the per-file bound)."""
    if files < 1:
        raise PlanError("--files must be at least 1")
    per_file = rows_per_person or (1 if contract.rows_are_people else contract.max_rows_per_unit)
    view = contract.for_dataset_release(files)
    bound = view.max_rows_per_unit
    total = files * per_file
    if contract.rows_are_people:  # every row of every file is another person
        a = assume(view, people * files, 1, expect, runs)
        total, bound = 1, 1
    else:
        # the engine keeps at most K of each person's rows anyway: plan on what it keeps
        a = assume(view, people, min(total, bound), expect, runs)
    left_out = max(0.0, 1.0 - bound / total) if total else 0.0
    return DatasetPlan(predict(view, a), files, total, bound, left_out,
                       releases_per_year(contract.release.schedule))
