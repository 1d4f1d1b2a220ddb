"""Privacy loss as a typed value, never a bare float."""

from __future__ import annotations

import math
from dataclasses import dataclass

from privacy.errors import BudgetExhausted, PipelineError


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
        # a tiny tolerance absorbs float summation error; it never admits a real overspend
        return self.epsilon <= cap.epsilon * (1 + 1e-9) and self.delta <= cap.delta * (1 + 1e-9)

    def __str__(self) -> str:
        return f"ε={self.epsilon:g}, δ={self.delta:g}"


def check_spend(dataset: str, pending: PrivacyLoss, spent: PrivacyLoss | None, cap: PrivacyLoss) -> None:
    """Raise BudgetExhausted (stating pending, spent and remaining) if pending would overspend."""
    spent_eps = spent.epsilon if spent else 0.0
    spent_delta = spent.delta if spent else 0.0
    if (
        spent_eps + pending.epsilon <= cap.epsilon * (1 + 1e-9)
        and spent_delta + pending.delta <= cap.delta * (1 + 1e-9)
    ):
        return
    raise BudgetExhausted(
        f"dataset '{dataset}': pending {pending} would exceed the budget cap {cap} "
        f"(spent ε={spent_eps:g}, δ={spent_delta:g}; remaining "
        f"ε={max(cap.epsilon - spent_eps, 0):g}, δ={max(cap.delta - spent_delta, 0):g}); "
        "the file was validated and masked but nothing was released; raise budget.epsilon_cap "
        "in the contract only if your privacy policy allows it"
    )
