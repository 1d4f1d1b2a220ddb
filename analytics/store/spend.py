"""What a dataset has spent in its current budget window, and whether it is exhausted.

One definition for both sides of the store: the writer refuses a reservation with
:func:`check_budget`, the read-only API shows ``exhausted`` with :func:`exhausted`, so the
two agree, on δ as on ε. Spend counts the committed ledger entries and the live
reservations (younger than the reservation timeout: an older one belongs to a crashed run,
which released nothing) created in the current window.

Budget policies: ``lifetime`` (the default) adds every spend up forever. ``window`` resets
the spend at the start of each calendar period (day, ISO week, month, quarter or year, in
UTC). That is a weaker guarantee: a person present in many periods loses ε per period, so
the total loss over the dataset's life has no bound. Choose it only when each period's
data are about different people, or when your privacy policy accepts a per-period bound.

    >>> spend = Spend(committed_epsilon=2.0, committed_delta=1e-6)  # the δ cap is spent
    >>> exhausted(spend, cap=PrivacyLoss(10.0, 1e-6), per_release=PrivacyLoss(1.0, 1e-7))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, case, func, or_, select

from analytics.store.schema import ledger
from privacy.budget import PrivacyLoss, budget_exhausted, exceeds
from privacy.errors import PipelineError

WINDOWS = ("day", "week", "month", "quarter", "year")


# --------------------------------------------------------------------------- budget windows


def window_start(policy: str, window: str | None, now: datetime) -> datetime | None:
    """Start (UTC) of the calendar period ``now`` falls in; None under the lifetime policy.

    Weeks start on Monday (ISO weeks); quarters in January, April, July and October.

    >>> window_start("window", "quarter", datetime(2024, 5, 17, 13, 5, tzinfo=UTC))
    datetime.datetime(2024, 4, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if policy != "window":
        return None
    if window not in WINDOWS:
        raise PipelineError(f"budget window must be one of {', '.join(WINDOWS)}")
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return day
    if window == "week":
        return day - timedelta(days=day.weekday())
    if window == "month":
        return day.replace(day=1)
    if window == "quarter":
        return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)
    return day.replace(month=1, day=1)


def window_end(window: str | None, start: datetime) -> datetime:
    """Start of the calendar period after the one starting at ``start``."""
    if window == "day":
        return start + timedelta(days=1)
    if window == "week":
        return start + timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}.get(window or "")
    if months is None:
        raise PipelineError(f"budget window must be one of {', '.join(WINDOWS)}")
    total = start.year * 12 + start.month - 1 + months
    return start.replace(year=total // 12, month=total % 12 + 1, day=1)


def in_window(column: Any, policy: str, window: str | None, now: datetime) -> Any:
    """SQL condition: ``column`` (a timestamp) falls in the current budget window of ``now``
    (None under the lifetime policy: every time counts)."""
    start = window_start(policy, window, now)
    if start is None:
        return None
    return and_(column >= start, column < window_end(window, start))


# --------------------------------------------------------------------------- spend


@dataclass(frozen=True)
class Spend:
    """Committed and live-reserved spend of a dataset in its current window."""

    committed_epsilon: float = 0.0
    committed_delta: float = 0.0
    reserved_epsilon: float = 0.0
    reserved_delta: float = 0.0

    @property
    def total(self) -> PrivacyLoss | None:
        """Committed plus reserved (None: nothing spent)."""
        eps = self.committed_epsilon + self.reserved_epsilon
        if eps <= 0:
            return None
        return PrivacyLoss(eps, self.committed_delta + self.reserved_delta)

    @property
    def reserved(self) -> PrivacyLoss | None:
        """What runs still in progress hold (None: nothing)."""
        if self.reserved_epsilon <= 0:
            return None
        return PrivacyLoss(self.reserved_epsilon, self.reserved_delta)


def spend_query(
    dataset: str,
    policy: str,
    window: str | None,
    *,
    now: datetime,
    live_after: datetime,
    exclude_id: int | None = None,
) -> Select[Any]:
    """SELECT committed ε, committed δ, reserved ε, reserved δ of ``dataset``: committed
    entries and reservations created after ``live_after``, in the window of ``now``
    (``exclude_id``: leave that ledger entry out)."""
    committed = ledger.c.state == "committed"
    live = and_(ledger.c.state == "reserved", ledger.c.created_at > live_after)
    cond = and_(ledger.c.dataset == dataset, or_(committed, live))
    current = in_window(ledger.c.created_at, policy, window, now)
    if current is not None:
        cond = and_(cond, current)
    if exclude_id is not None:
        cond = and_(cond, ledger.c.id != exclude_id)
    return select(
        func.coalesce(func.sum(case((committed, ledger.c.epsilon), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((committed, ledger.c.delta), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.epsilon)), 0.0),
        func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.delta)), 0.0),
    ).where(cond)


def load_spend(
    conn: Connection,
    ds: Row[Any],
    *,
    now: datetime,
    live_after: datetime,
    exclude_id: int | None = None,
) -> Spend:
    """The spend of the dataset of ``ds`` (a ``datasets`` row) in its current window."""
    query = spend_query(ds.name, ds.policy, ds.window, now=now, live_after=live_after,
                        exclude_id=exclude_id)
    return Spend(*(float(x) for x in conn.execute(query).one()))


def cap_of(ds: Row[Any]) -> PrivacyLoss:
    """The (ε, δ) cap of a ``datasets`` row."""
    return PrivacyLoss(ds.epsilon_cap, ds.delta_cap)


def per_release_of(ds: Row[Any]) -> PrivacyLoss:
    """What the next file of a ``datasets`` row spends, as its latest contract says (δ 0
    for a row a writer from before r0003 registered)."""
    return PrivacyLoss(ds.epsilon_per_release, ds.delta_per_release or 0.0)


def exhausted(spend: Spend, cap: PrivacyLoss, per_release: PrivacyLoss) -> bool:
    """Whether one more release of ``per_release`` on top of ``spend`` would take ε or δ
    over ``cap``: the writer refuses it, the read-only API shows the dataset exhausted."""
    return exceeds(per_release, spend.total, cap)


def check_budget(dataset: str, pending: PrivacyLoss, cap: PrivacyLoss, spend: Spend) -> None:
    """Raise BudgetExhausted, stating pending, spent and remaining (and what runs still in
    progress hold), when ``pending`` does not fit."""
    if exhausted(spend, cap, pending):
        raise budget_exhausted(dataset, pending, spend.total, cap, reserved=spend.reserved)
