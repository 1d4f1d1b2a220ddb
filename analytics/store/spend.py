"""What a dataset has spent in its current budget window, and whether it is exhausted.

One definition for both sides of the store: the writer refuses a reservation with
:func:`check_budget`, the read-only API shows ``exhausted`` with :func:`exhausted`, so the
two agree, on δ as on ε. Spend counts the committed ledger entries and the live
reservations (younger than the reservation timeout: an older one belongs to a crashed run,
which released nothing) created in the current window.

Accountings: ``pure`` (the default) adds ε up; ``zcdp`` adds ρ up (zero-concentrated DP)
and holds the total to the (ε, δ) cap through OpenDP's conversion, at the δ the thresholds
have not spent: the ledger keeps ρ per entry, and its ε column shows what each entry alone
is worth at the δ cap.

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

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, case, func, or_, select

from analytics.store.schema import ledger
from privacy.budget import (
    Loss,
    PrivacyLoss,
    ZCDPLoss,
    budget_exhausted,
    epsilon_alone,
    exceeds,
    zcdp_epsilon,
    zcdp_releases,
)
from privacy.errors import BudgetExhausted, PipelineError

#: relative tolerance absorbing float error, as privacy.budget's
_TOLERANCE = 1e-9

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
    committed_rho: float = 0.0
    reserved_rho: float = 0.0

    @property
    def rho(self) -> float:
        """Committed plus reserved ρ (zcdp)."""
        return self.committed_rho + self.reserved_rho

    @property
    def delta(self) -> float:
        """Committed plus reserved δ."""
        return self.committed_delta + self.reserved_delta

    def converted(self, delta_cap: float, *, committed_only: bool = False) -> float:
        """Under zcdp: the ε the ρ spent converts to at the δ the cap leaves after the
        thresholds' δ (0 with nothing spent; ``math.inf`` with no δ left)."""
        rho = self.committed_rho if committed_only else self.rho
        delta = self.committed_delta if committed_only else self.delta
        if rho <= 0:
            return 0.0
        return zcdp_epsilon(rho, delta_cap - delta)

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
    """SELECT committed ε, committed δ, reserved ε, reserved δ, committed ρ, reserved ρ of
    ``dataset``: committed
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
    rho = func.coalesce(ledger.c.rho, 0.0)
    return select(
        func.coalesce(func.sum(case((committed, ledger.c.epsilon), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((committed, ledger.c.delta), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.epsilon)), 0.0),
        func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.delta)), 0.0),
        func.coalesce(func.sum(case((committed, rho), else_=0.0)), 0.0),
        func.coalesce(func.sum(case((committed, 0.0), else_=rho)), 0.0),
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


def per_release_of(ds: Row[Any]) -> Loss:
    """What the next release of a ``datasets`` row spends, as its latest contract says (δ 0
    for a row a writer from before r0003 registered)."""
    if ds.accounting == "zcdp" and ds.rho_per_release:
        return ZCDPLoss(ds.rho_per_release, ds.delta_per_release or 0.0)
    return PrivacyLoss(ds.epsilon_per_release, ds.delta_per_release or 0.0)


def ledger_values(loss: Loss, delta_cap: float) -> dict[str, float | None]:
    """The ledger (or releases) columns of ``loss``: ε and δ, and under zcdp ρ with the ε
    it alone converts to at ``delta_cap`` (what the entry is worth on its own; ρ is what
    adds up).

    >>> ledger_values(PrivacyLoss(1.0, 1e-7), 1e-6)
    {'epsilon': 1.0, 'delta': 1e-07, 'rho': None}
    >>> v = ledger_values(ZCDPLoss(0.0042), 1e-6)
    >>> round(v['epsilon'], 3), v['rho']
    (0.392, 0.0042)
    """
    rho = loss.rho if isinstance(loss, ZCDPLoss) else None
    return {"epsilon": min(epsilon_alone(loss, delta_cap), 1e300), "delta": loss.delta, "rho": rho}


def zcdp_total(spend: Spend, pending: ZCDPLoss, cap: PrivacyLoss) -> float:
    """Under zcdp: the ε that ``spend`` plus ``pending`` converts to at the δ the cap leaves
    after their thresholds' δ (``math.inf`` when none is left)."""
    rho = spend.rho + pending.rho
    left = cap.delta - spend.delta - pending.delta
    return zcdp_epsilon(rho, left) if left > 0 else math.inf


def exhausted(spend: Spend, cap: PrivacyLoss, per_release: Loss) -> bool:
    """Whether one more release of ``per_release`` on top of ``spend`` would take the
    dataset over ``cap`` (ε or δ; under zcdp, the conversion of the total ρ at the δ left):
    the writer refuses it, the read-only API shows the dataset exhausted."""
    if isinstance(per_release, ZCDPLoss):
        return not zcdp_total(spend, per_release, cap) <= cap.epsilon * (1 + _TOLERANCE)
    return exceeds(per_release, spend.total, cap)


def releases_remaining(spend: Spend, cap: PrivacyLoss, per_release: Loss) -> int:
    """How many more releases of ``per_release`` fit on top of ``spend`` (reservations
    counted) under ``cap``; under zcdp by OpenDP's conversion of the growing total ρ.

    >>> releases_remaining(Spend(committed_epsilon=2.5), PrivacyLoss(10.0), PrivacyLoss(1.0))
    7
    >>> releases_remaining(Spend(), PrivacyLoss(10.0, 1e-6), ZCDPLoss(0.0042))
    366
    """
    if isinstance(per_release, PrivacyLoss):
        spent = spend.total or PrivacyLoss(1.0, 0.0)
        eps_left = cap.epsilon - (spend.committed_epsilon + spend.reserved_epsilon)
        n = math.floor(eps_left / per_release.epsilon * (1 + _TOLERANCE) + 1e-9)
        if per_release.delta > 0:
            delta_left = cap.delta - (spent.delta if spend.total else 0.0)
            n = min(n, math.floor(delta_left / per_release.delta * (1 + _TOLERANCE) + 1e-9))
        return max(n, 0)

    return zcdp_releases(cap.epsilon, cap.delta, per_release.rho, per_release.delta,
                         spent_rho=spend.rho, spent_delta=spend.delta)


def check_budget(dataset: str, pending: Loss, cap: PrivacyLoss, spend: Spend) -> None:
    """Raise BudgetExhausted, stating pending, spent and remaining (and what runs still in
    progress hold), when ``pending`` does not fit."""
    if not exhausted(spend, cap, pending):
        return
    if isinstance(pending, PrivacyLoss):
        raise budget_exhausted(dataset, pending, spend.total, cap, reserved=spend.reserved)
    total = zcdp_total(spend, pending, cap)
    held = f" (ρ={spend.reserved_rho:g} of it reserved by runs still in progress)" if (
        spend.reserved_rho > 0) else ""
    raise BudgetExhausted(
        f"dataset '{dataset}': pending {pending} would take the ρ spent, {spend.rho:g}{held}, "
        f"to ε={total:g} at δ={cap.delta:g} (OpenDP's conversion of zCDP), over the budget "
        f"cap {cap}; the file was validated and masked but nothing was released; raise "
        "budget.epsilon_cap in the contract only if your privacy policy allows it",
        dataset=dataset, pending=None, spent=None, cap=cap,
    )
