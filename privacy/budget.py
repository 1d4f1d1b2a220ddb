"""Privacy loss as a typed value, never a bare float, and the check that refuses to overspend.

Two accountings: pure ε (``PrivacyLoss``: Laplace noise, ε adding up over releases) and
zero-concentrated DP (``ZCDPLoss``: Gaussian noise, ρ adding up, the total reported as (ε, δ)
through OpenDP's conversion). Long-lived datasets that release often get far less noise under
zCDP for the same (ε, δ) guarantee; below about 16 releases pure ε is better
(``privacy-analytics plan --releases N`` compares them).

>>> check_spend("d", PrivacyLoss(1.0), PrivacyLoss(9.5), PrivacyLoss(10.0))  # doctest: +ELLIPSIS
Traceback (most recent call last):
privacy.errors.BudgetExhausted: dataset 'd': pending ε=1, δ=0 would exceed the budget cap ε=10, δ=0 ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from privacy.errors import BudgetExhausted, PipelineError

#: relative tolerance absorbing float summation error; it never admits a real overspend
_TOLERANCE = 1e-9


@dataclass(frozen=True, order=True)
class PrivacyLoss:
    """An (ε, δ) pair. ε is finite and positive; δ is finite and in [0, 1).

    >>> PrivacyLoss(1.0, 1e-6) + PrivacyLoss(0.5, 0.0)
    PrivacyLoss(epsilon=1.5, delta=1e-06)
    """

    epsilon: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        eps, delta = self.epsilon, self.delta
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps):
            raise PipelineError(f"ε must be a finite number, got {eps!r}")
        if eps <= 0:
            raise PipelineError(f"ε must be positive, got {eps!r}")
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise PipelineError(f"δ must be a number, got {delta!r}")
        if not math.isfinite(delta) or not 0 <= delta < 1:
            raise PipelineError(f"δ must be finite and in [0, 1), got {delta!r}")
        object.__setattr__(self, "epsilon", float(eps))
        object.__setattr__(self, "delta", float(delta))

    def __add__(self, other: PrivacyLoss) -> PrivacyLoss:
        return PrivacyLoss(self.epsilon + other.epsilon, self.delta + other.delta)

    def fits_within(self, cap: PrivacyLoss) -> bool:
        return (self.epsilon <= cap.epsilon * (1 + _TOLERANCE)
                and self.delta <= cap.delta * (1 + _TOLERANCE))

    def __str__(self) -> str:
        return f"ε={self.epsilon:g}, δ={self.delta:g}"

    #: how the loss grows as noise shrinks: ε ∝ 1/scale (Laplace)
    exponent = 1

    @property
    def amount(self) -> float:
        """What composes by addition: ε."""
        return self.epsilon

    def part(self, fraction: float, delta: float) -> PrivacyLoss:
        """``fraction`` of ε, with ``delta``."""
        return PrivacyLoss(self.epsilon * fraction, delta)


@dataclass(frozen=True, order=True)
class ZCDPLoss:
    """A (ρ, δ) pair under zero-concentrated DP: ρ-zCDP, plus δ where private group keys are
    thresholded (approximate zCDP). ρ is finite and positive; δ is finite and in [0, 1).

    >>> ZCDPLoss(0.01) + ZCDPLoss(0.02, 1e-7)
    ZCDPLoss(rho=0.03, delta=1e-07)
    >>> round(ZCDPLoss(0.5).approx(1e-6).epsilon, 2)  # OpenDP's conversion to (ε, δ)
    5.22
    """

    rho: float
    delta: float = 0.0

    #: how the loss grows as noise shrinks: ρ ∝ 1/scale² (Gaussian)
    exponent = 2

    def __post_init__(self) -> None:
        rho, delta = self.rho, self.delta
        if isinstance(rho, bool) or not isinstance(rho, int | float) or not math.isfinite(rho):
            raise PipelineError(f"ρ must be a finite number, got {rho!r}")
        if rho <= 0:
            raise PipelineError(f"ρ must be positive, got {rho!r}")
        if isinstance(delta, bool) or not isinstance(delta, int | float):
            raise PipelineError(f"δ must be a number, got {delta!r}")
        if not math.isfinite(delta) or not 0 <= delta < 1:
            raise PipelineError(f"δ must be finite and in [0, 1), got {delta!r}")
        object.__setattr__(self, "rho", float(rho))
        object.__setattr__(self, "delta", float(delta))

    def __add__(self, other: ZCDPLoss) -> ZCDPLoss:
        return ZCDPLoss(self.rho + other.rho, self.delta + other.delta)

    def fits_within(self, cap: ZCDPLoss) -> bool:
        return (self.rho <= cap.rho * (1 + _TOLERANCE)
                and self.delta <= cap.delta * (1 + _TOLERANCE))

    def __str__(self) -> str:
        return f"ρ={self.rho:g}, δ={self.delta:g}"

    @property
    def amount(self) -> float:
        """What composes by addition: ρ."""
        return self.rho

    def part(self, fraction: float, delta: float) -> ZCDPLoss:
        """``fraction`` of ρ, with ``delta``."""
        return ZCDPLoss(self.rho * fraction, delta)

    def approx(self, delta_cap: float) -> PrivacyLoss:
        """The (ε, δ) guarantee with δ = ``delta_cap`` in all: this loss's thresholds' δ,
        the rest spent by OpenDP's zCDP-to-approximate-DP conversion (ε infinite, as
        ``math.inf`` is no PrivacyLoss, raises when no δ is left for it)."""
        left = delta_cap - self.delta
        if not left > 0:
            raise PipelineError(
                f"{self} leaves no δ of the cap δ={delta_cap:g} for the conversion to (ε, δ)"
            )
        return PrivacyLoss(zcdp_epsilon(self.rho, left), delta_cap)


#: a privacy loss under either accounting
Loss = PrivacyLoss | ZCDPLoss


def compose(total: Loss | None, more: Loss) -> Loss:
    """``total`` + ``more`` (``more`` alone when ``total`` is None); the two accountings
    never mix (a release under one cannot be added to the other's).

    >>> compose(None, ZCDPLoss(0.1)), compose(PrivacyLoss(1.0), PrivacyLoss(0.5))
    (ZCDPLoss(rho=0.1, delta=0.0), PrivacyLoss(epsilon=1.5, delta=0.0))
    """
    if total is None:
        return more
    if isinstance(total, PrivacyLoss) and isinstance(more, PrivacyLoss):
        return total + more
    if isinstance(total, ZCDPLoss) and isinstance(more, ZCDPLoss):
        return total + more
    raise PipelineError(f"cannot add {more} to {total}: one is pure ε, the other zCDP")


def fits(loss: Loss, cap: Loss) -> bool:
    """Whether ``loss`` is within ``cap`` (False when they are of different accountings)."""
    if isinstance(loss, PrivacyLoss) and isinstance(cap, PrivacyLoss):
        return loss.fits_within(cap)
    if isinstance(loss, ZCDPLoss) and isinstance(cap, ZCDPLoss):
        return loss.fits_within(cap)
    return False


def like(loss: Loss, amount: float, delta: float) -> Loss:
    """A loss of ``loss``'s accounting: ε (or ρ) ``amount`` and ``delta``."""
    return ZCDPLoss(amount, delta) if isinstance(loss, ZCDPLoss) else PrivacyLoss(amount, delta)


def epsilon_alone(loss: Loss, delta_cap: float) -> float:
    """The ε of ``loss`` on its own: pure ε's; under zCDP, what its ρ converts to at the δ
    ``delta_cap`` leaves after its thresholds' (``math.inf`` when none is left). Shown next
    to ρ; never added up (ρ is).

    >>> epsilon_alone(PrivacyLoss(0.5), 1e-6), round(epsilon_alone(ZCDPLoss(0.0042), 1e-6), 3)
    (0.5, 0.392)
    """
    if isinstance(loss, PrivacyLoss):
        return loss.epsilon
    left = delta_cap - loss.delta
    return zcdp_epsilon(loss.rho, left) if left > 0 else math.inf


def zcdp_epsilon(rho: float, delta: float) -> float:
    """ε of a ρ-zCDP guarantee at ``delta``, by OpenDP's conversion (``math.inf`` when no
    finite ε exists, e.g. δ = 0).

    >>> round(zcdp_epsilon(0.0042, 5e-7), 3)
    0.406
    """
    if not delta > 0:
        return math.inf
    return _zcdp_epsilon(float(rho), float(delta))


@lru_cache(maxsize=4096)
def _zcdp_epsilon(rho: float, delta: float) -> float:
    from privacy.release._opendp import opendp

    dp = opendp()
    # a Gaussian mechanism of sensitivity 1 at σ = 1/√(2ρ) is exactly ρ-zCDP
    sigma = 1.0 / math.sqrt(2.0 * rho)
    m = dp.m.make_gaussian(dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float),
                           scale=sigma)
    try:
        return float(dp.c.make_zCDP_to_approxDP(m).map(1.0).epsilon(delta))
    except dp.OpenDPException:  # so little noise that ε overflows: far over any cap
        return math.inf


def zcdp_releases(epsilon_cap: float, delta_cap: float, rho: float, delta: float = 0.0,
                  *, spent_rho: float = 0.0, spent_delta: float = 0.0) -> int:
    """How many releases of (ρ ``rho``, δ ``delta``) fit on top of what is spent under the
    cap (ε, δ): the largest n whose total ρ converts, at the δ the thresholds leave, to at
    most ``epsilon_cap`` (OpenDP's conversion; exponential then binary search).

    >>> zcdp_releases(10.0, 1e-6, 0.0042)
    366
    """

    def fits(n: int) -> bool:
        left = delta_cap - spent_delta - n * delta
        total = spent_rho + n * rho
        if total <= 0:
            return True
        return left > 0 and zcdp_epsilon(total, left) <= epsilon_cap * (1 + _TOLERANCE)

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while fits(hi) and hi < 10**9:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def zcdp_rho_for(epsilon: float, delta: float) -> float:
    """The largest ρ whose OpenDP conversion at ``delta`` stays within ``epsilon`` (bisection
    on a log scale; 0 when δ = 0).

    >>> rho = zcdp_rho_for(10.0, 1e-6)
    >>> zcdp_epsilon(rho, 1e-6) <= 10.0, round(rho, 3)
    (True, 1.539)
    """
    if not delta > 0:
        return 0.0
    lo, hi = 1e-12, 1e6
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if zcdp_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


def exceeds(pending: PrivacyLoss, spent: PrivacyLoss | None, cap: PrivacyLoss) -> bool:
    """Whether spending ``pending`` on top of ``spent`` would take ε or δ over ``cap``.

    >>> exceeds(PrivacyLoss(1.0, 1e-7), PrivacyLoss(2.0, 1e-6), PrivacyLoss(10.0, 1e-6))
    True
    """
    spent_eps = spent.epsilon if spent else 0.0
    spent_delta = spent.delta if spent else 0.0
    return not (
        spent_eps + pending.epsilon <= cap.epsilon * (1 + _TOLERANCE)
        and spent_delta + pending.delta <= cap.delta * (1 + _TOLERANCE)
    )


def budget_exhausted(
    dataset: str,
    pending: PrivacyLoss,
    spent: PrivacyLoss | None,
    cap: PrivacyLoss,
    *,
    reserved: PrivacyLoss | None = None,
) -> BudgetExhausted:
    """The refusal of ``pending``: it states pending, spent and remaining, and what of
    ``spent`` is ``reserved`` by runs still in progress."""
    spent_eps = spent.epsilon if spent else 0.0
    spent_delta = spent.delta if spent else 0.0
    message = (
        f"dataset '{dataset}': pending {pending} would exceed the budget cap {cap} "
        f"(spent ε={spent_eps:g}, δ={spent_delta:g}; remaining "
        f"ε={max(cap.epsilon - spent_eps, 0):g}, δ={max(cap.delta - spent_delta, 0):g}); "
        "the file was validated and masked but nothing was released; raise budget.epsilon_cap "
        "in the contract only if your privacy policy allows it"
    )
    if reserved is not None:
        message += (
            f" (spent includes ε={reserved.epsilon:g}, δ={reserved.delta:g} reserved by runs "
            "still in progress)"
        )
    return BudgetExhausted(message, dataset=dataset, pending=pending, spent=spent, cap=cap,
                           reserved=reserved)


def check_spend(
    dataset: str,
    pending: PrivacyLoss,
    spent: PrivacyLoss | None,
    cap: PrivacyLoss,
    *,
    reserved: PrivacyLoss | None = None,
) -> None:
    """Raise BudgetExhausted (stating pending, spent and remaining) if pending would overspend.

    ``reserved`` is the part of ``spent`` that runs still in progress hold (None: none).
    """
    if exceeds(pending, spent, cap):
        raise budget_exhausted(dataset, pending, spent, cap, reserved=reserved)
