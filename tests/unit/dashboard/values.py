"""ValueRow builders for the dashboard's unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from analytics.queries import ValueRow


def value(metric: str, v: float, lower: float | None = None, upper: float | None = None, *,
          column: str | None = None, group: dict[str, str] | None = None,
          analysis: str = "comparison", release: str = "comparison:efficiency:team",
          release_id: int = 1) -> ValueRow:
    return ValueRow(release_id=release_id, release_name=release, analysis=analysis,
                    metric=metric, column=column, group=group or {}, value=v, lower=lower,
                    upper=upper, scale=0.05, epsilon=0.2,
                    created_at=datetime(2025, 1, 2, tzinfo=UTC))
