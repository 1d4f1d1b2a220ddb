"""ValueRow builders for the dashboard's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from analytics.store.rows import BudgetStatus, ValueRow


def value(metric: str, v: float, lower: float | None = None, upper: float | None = None, *,
          column: str | None = None, group: dict[str, str] | None = None,
          analysis: str = "comparison", release: str = "comparison:efficiency:team",
          release_id: int = 1) -> ValueRow:
    return ValueRow(release_id=release_id, release_name=release, analysis=analysis,
                    metric=metric, column=column, group=group or {}, value=v, lower=lower,
                    upper=upper, scale=0.05, epsilon=0.2,
                    created_at=datetime(2025, 1, 2, tzinfo=UTC))


def budget(epsilon_spent: float = 10.0, delta_spent: float = 0.0, *,
           epsilon_cap: float = 10.0, delta_cap: float = 1e-6, epsilon_per_release: float = 1.0,
           delta_per_release: float = 1e-7, dataset: str = "employees") -> BudgetStatus:
    """A lifetime budget; by default its ε is spent and its δ is not."""
    needed = (epsilon_spent + epsilon_per_release > epsilon_cap
              or delta_spent + delta_per_release > delta_cap)
    return BudgetStatus(
        dataset=dataset, policy="lifetime", window=None, window_start=None,
        epsilon_cap=epsilon_cap, epsilon_spent=epsilon_spent, epsilon_reserved=0.0,
        epsilon_remaining=max(epsilon_cap - epsilon_spent, 0.0), delta_cap=delta_cap,
        delta_spent=delta_spent, delta_reserved=0.0,
        delta_remaining=max(delta_cap - delta_spent, 0.0),
        epsilon_per_release=epsilon_per_release, exhausted=needed,
        delta_per_release=delta_per_release,
    )
