"""Privacy loss recomputed by hand: the sensitivity of a query and its noise scale.

Nothing here asks OpenDP's privacy maps or ``ReleaseEngine._solve_scales`` anything: the
numbers come from the contract (rows per person, bounds), the :class:`QuerySpec` (what is
aggregated, over which groups) and the noise scale of each released column. The tests in
``test_accounting.py`` hold OpenDP's privacy map to these numbers.

**The neighbouring relation** the ledger claims is one person added to or removed from a
file (OpenDP: ``SymmetricIdDistance`` with d_in = 1 identifier, or ``SymmetricDistance``
with d_in = 1 row when ``rows_are_people``). What that person can change, as OpenDP's input
sees it after the plan's per-person bound:

* ``rows`` = ``max_rows_per_unit`` = k with a privacy-unit column: the plan keeps at most k
  rows per person (which k rows, first or random, does not matter: the others' rows are
  untouched), and never more than the file holds (``max_rows_per_file`` = L, the bound
  every file OpenDP sees meets, so rows = min(k, L)); 1 with ``rows_are_people`` (the
  contract forces k = 1); 1 for a ``per_unit`` query, whose ``group_by(unit)`` leaves one
  row per person.
* Each of those rows lands in exactly ONE group, so however the rows spread over groups (a
  person's k rows may reach k different groups), the L1 norm over all groups of the
  person's effect is at most ``rows`` × the effect of one row. Public keys change nothing
  here (rows whose key is not a key are not released at all).

**Laplace aggregates** (OpenDP's discrete Laplace on integer columns, scale b): the density
ratio of two noise vectors shifted by Δ₁ in L1 is at most exp(Δ₁/b), so ε = Δ₁ / b, and the
aggregates of one measurement compose by adding their ε.

* ``len`` (a row count, per group or not): one row moves one group's count by 1, so
  Δ₁ = rows.
* ``sum`` of integers clamped to [lo, hi]: one row moves one group's sum by its value, at
  most max(|lo|, |hi|) in magnitude, so Δ₁ = rows · max(|lo|, |hi|). The catalogue's
  centred fixed-point measures have integer bounds (-10⁹, 10⁹); squares (0, 10⁹).

**Quantiles** (exponential mechanism). OpenDP scores candidate c on the column x as
``|(den − num)·#{x < c} − num·#{x > c}|`` with α = num/den (in lowest terms for the dyadic
levels 1/8 … 7/8 the catalogue uses) and releases the candidate of least noisy score (Gumbel
noise of scale b / permute-and-flip). One row changes #{x < c} or #{x > c} of a candidate by
at most 1, so a candidate's score moves by at most Δ∞ = rows · max(num, den − num). The
mechanism is (Δ_range / b)-DP where Δ_range = max_c δ_c − min_c δ_c is the spread of the
score changes. The score is not monotonic (candidates on the two sides of the quantile move
in opposite directions, through the absolute value), so Δ_range = 2·Δ∞ and
ε = 2 · rows · max(num, den − num) / b. (Only the ungrouped query carries quantiles.)

**Thresholds** (private group keys). A group that exists only when the person is present
holds only that person's rows, at most ``rows`` of them; it is released if its noisy count
c + Z > T, with Z discrete Laplace of scale b: P[Z = z] = (1 − q)/(1 + q) · q^|z|,
q = exp(−1/b), so P[Z > t] = q^(t+1)/(1 + q) = exp(−t/b)/(exp(1/b) + 1) and a single such
group leaks with probability at most p = P[Z > T − rows]. The person reaches at most
``groups`` groups (k after the plan's per-person bound on groups; 1 row reaches 1 group), each
with independent noise, so δ = 1 − (1 − p)^groups. The groups present either way are covered
by the Laplace ε above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from privacy.contract import Contract
from privacy.release import Agg, QuerySpec


@dataclass(frozen=True)
class PersonEffect:
    """How much of OpenDP's input one person can add or remove."""

    rows: int  # rows, after the plan's per-person bound
    groups: int  # groups those rows can reach (1 without grouping)


def person_effect(contract: Contract, spec: QuerySpec) -> PersonEffect:
    """The rows and groups one person reaches in ``spec``'s input."""
    if spec.per_unit:
        return PersonEffect(1, 1)
    if contract.rows_are_people:
        assert contract.max_rows_per_unit == 1  # the contract forces it
        return PersonEffect(1, 1)
    # a person has at most k rows after truncation, and no more than the file holds
    rows = min(contract.max_rows_per_unit, contract.max_rows_per_file)
    if not spec.by:
        return PersonEffect(rows, 1)
    keys = len(spec.keys) if spec.keys is not None else rows
    return PersonEffect(rows, min(rows, keys))


def quantile_fraction(alpha: float) -> Fraction:
    """α as OpenDP's score uses it: exactly, for the dyadic levels of the catalogue."""
    frac = Fraction(alpha)
    assert frac.denominator <= 1024, (
        f"alpha={alpha} is not a dyadic level: OpenDP approximates it with a huge "
        "denominator, which this arithmetic does not model"
    )
    return frac


def score_sensitivity(alpha: float, rows: int) -> int:
    """Δ∞ of the quantile score vector: rows · max(num, den − num)."""
    frac = quantile_fraction(alpha)
    num, den = frac.numerator, frac.denominator
    return rows * max(num, den - num)


def l1_sensitivity(agg: Agg, rows: int) -> float:
    """Δ₁ of a Laplace aggregate (``len`` or integer ``sum``) over all groups."""
    if agg.kind == "len":
        return float(rows)
    if agg.kind == "sum":
        assert agg.bounds is not None
        lo, hi = agg.bounds
        # integer sums are exact; float sums (the per-person shares of the quality release,
        # in [0, 1]) are charged a little more by OpenDP for rounding, never less
        return float(rows * max(abs(lo), abs(hi)))
    raise AssertionError(f"{agg.kind} is not a Laplace aggregate")


def aggregate_epsilon(agg: Agg, scale: float, effect: PersonEffect) -> float:
    """ε of one aggregate at noise ``scale``, from its sensitivity."""
    if agg.kind == "quantile":
        assert effect.groups == 1, "the catalogue releases quantiles ungrouped only"
        return 2.0 * score_sensitivity(agg.alpha, effect.rows) / scale
    return l1_sensitivity(agg, effect.rows) / scale


def epsilons(contract: Contract, spec: QuerySpec, scales: dict[str, float]) -> dict[str, float]:
    """ε of every aggregate of ``spec`` (their sum is the measurement's ε)."""
    effect = person_effect(contract, spec)
    return {a.name: aggregate_epsilon(a, scales[a.name], effect) for a in spec.aggs}


def discrete_laplace_tail(scale: float, t: int) -> float:
    """P[Z > t] for Z discrete Laplace of ``scale`` (t ≥ 0): exp(−t/b) / (exp(1/b) + 1)."""
    assert t >= 0
    return math.exp(-t / scale) / (math.exp(1.0 / scale) + 1.0)


def threshold_delta(scale: float, threshold: int, effect: PersonEffect) -> float:
    """δ of releasing groups whose noisy count exceeds ``threshold``: 1 − (1 − p)^groups."""
    assert threshold > effect.rows, "a threshold at or below one person's rows leaks surely"
    p = discrete_laplace_tail(scale, threshold - effect.rows)
    # 1 − (1 − p)^g without cancellation for tiny p
    return -math.expm1(effect.groups * math.log1p(-p))


def describe(contract: Contract, spec: QuerySpec) -> str:
    """The query shape, for failure messages."""
    if spec.per_unit:
        grouping = "one row per person"
    elif not spec.by:
        grouping = "ungrouped"
    elif spec.keys is not None:
        grouping = f"grouped by {spec.by} over {len(spec.keys)} public keys"
    else:
        grouping = f"grouped by {spec.by} over private keys (thresholded)"
    unit = (
        "rows_are_people"
        if contract.rows_are_people
        else f"privacy_unit with max_rows_per_unit={contract.max_rows_per_unit}"
    )
    aggs = ", ".join(
        f"{a.name}:{a.kind}"
        + (f"{a.bounds}" if a.kind == "sum" else "")
        + (f"(alpha={a.alpha})" if a.kind == "quantile" else "")
        for a in spec.aggs
    )
    return (
        f"query '{spec.id}' ({grouping}; {unit}; max_rows_per_file="
        f"{contract.max_rows_per_file}) aggregating [{aggs}]"
    )
