"""Privacy loss as a typed value, never a bare float, and the check that refuses to overspend.

>>> check_spend("d", PrivacyLoss(1.0), PrivacyLoss(9.5), PrivacyLoss(10.0))  # doctest: +ELLIPSIS
Traceback (most recent call last):
privacy.errors.BudgetExhausted: dataset 'd': pending ε=1, δ=0 would exceed the budget cap ε=10, δ=0 ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
