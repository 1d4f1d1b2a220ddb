"""Property tests of the ledger's arithmetic: any sequence of reserve / publish / cancel /
waiting keeps committed + live reserved spend within the cap, and remaining = cap - spent."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import func, select

from analytics.store import AggregateStore, ReadOnlyStore, Reservation, schema
from analytics.store.spend import window_end, window_start
from privacy.budget import PrivacyLoss
from privacy.errors import BudgetExhausted
from tests.unit.analytics.store.helpers import (
    Clock,
    make_contract,
    make_obj,
    make_release_set,
    make_run,
)

CAP = 3.0
TIMEOUT = timedelta(minutes=30)
# multiples of 1/8 are exact in binary floating point, so the model's sums equal the store's
EPSILONS = st.integers(1, 16).map(lambda k: k / 8)

_DIR = Path(tempfile.mkdtemp(prefix="pa-ledger-prop-"))
URL = f"sqlite:///{_DIR / 'aggregates.db'}"


class LedgerMachine(RuleBasedStateMachine):
    reservations = Bundle("reservations")
    published = Bundle("published")

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock(datetime(2024, 5, 17, 12, tzinfo=UTC))
        self.store = AggregateStore(URL, clock=self.clock, reservation_timeout=TIMEOUT)
        self.ro = ReadOnlyStore(URL, clock=self.clock, reservation_timeout=TIMEOUT)
        self.dataset = f"ds-{uuid.uuid4().hex[:10]}"
        self.contract = make_contract(self.dataset, cap=CAP, delta=1e-3, per_release=0.125)
        self.committed = 0.0
        #: reservation id -> (epsilon, created_at) of reservations neither committed nor cancelled
        self.open: dict[int, tuple[float, datetime]] = {}
        self.n = 0

    def live_reserved(self, exclude: int | None = None) -> float:
        cutoff = self.clock.now - TIMEOUT
        return sum(e for i, (e, t) in self.open.items() if t > cutoff and i != exclude)

    @rule(target=reservations, eps=EPSILONS)
    def reserve(self, eps: float) -> Reservation | None:
        self.n += 1
        obj = make_obj(self.dataset, name=f"f{self.n}.csv", etag=f"e{self.n}")
        fits = self.committed + self.live_reserved() + eps <= CAP
        try:
            res = self.store.reserve(self.contract, PrivacyLoss(eps, 1e-6), obj=obj,
                                     run_id=f"r{self.n}")
        except BudgetExhausted:
            assert not fits
            return None
        assert fits
        self.open[res.id] = (eps, self.clock.now)
        return res

    @rule(target=published, res=consumes(reservations), fraction=st.sampled_from([0.5, 1.0]))
    def publish(self, res: Reservation | None, fraction: float) -> Reservation | None:
        if res is None or res.id not in self.open:
            return None
        eps, created = self.open.pop(res.id)
        actual = eps * fraction
        expired = created <= self.clock.now - TIMEOUT
        fits = not expired or self.committed + self.live_reserved() + actual <= CAP
        release_set = make_release_set(self.dataset, PrivacyLoss(actual, 1e-6 * fraction))
        try:
            ok = self.store.publish(res, release_set, make_run(res.run_id, res.obj))
        except BudgetExhausted:
            assert not fits
            return None
        assert fits and ok
        self.committed += actual
        return res

    @rule(res=consumes(reservations))
    def cancel(self, res: Reservation | None) -> None:
        if res is None:
            return
        self.store.cancel(res)
        self.open.pop(res.id, None)

    @rule(res=published)
    def publish_again(self, res: Reservation | None) -> None:
        """A duplicate of an object version that was already published spends nothing."""
        if res is None:
            return
        assert self.store.find_published(res.obj) == res.run_id
        if self.committed + self.live_reserved() + 0.125 > CAP:
            return
        again = self.store.reserve(self.contract, PrivacyLoss(0.125, 1e-6), obj=res.obj,
                                   run_id=f"{res.run_id}-again")
        self.open[again.id] = (0.125, self.clock.now)
        dup = make_release_set(self.dataset, PrivacyLoss(0.125, 1e-6))
        assert self.store.publish(again, dup, make_run(again.run_id, res.obj)) is False
        self.open.pop(again.id)

    @precondition(lambda self: bool(self.open))
    @rule(minutes=st.sampled_from([1, 10, 45]))
    def wait(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)

    @invariant()
    def never_over_the_cap(self) -> None:
        b = self.ro.budget(self.dataset) if self.n else None
        if b is None:
            return
        assert b.epsilon_spent == pytest.approx(self.committed)
        assert b.epsilon_reserved == pytest.approx(self.live_reserved())
        assert b.epsilon_spent + b.epsilon_reserved <= CAP * (1 + 1e-9)
        assert b.epsilon_remaining == pytest.approx(CAP - b.epsilon_spent)
        assert b.epsilon_remaining >= 0

    @invariant()
    def committed_rows_add_up(self) -> None:
        with self.store._engine.connect() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(schema.ledger.c.epsilon), 0.0)).where(
                    schema.ledger.c.dataset == self.dataset, schema.ledger.c.state == "committed"
                )
            ).scalar_one()
        assert total == pytest.approx(self.committed)
        assert total <= CAP * (1 + 1e-9)

    def teardown(self) -> None:
        self.store.close()
        self.ro.close()


LedgerMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerArithmetic = LedgerMachine.TestCase


WINDOW_NAMES = st.sampled_from(["day", "week", "month", "quarter", "year"])
MOMENTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(window=WINDOW_NAMES, now=MOMENTS)
def test_every_moment_falls_in_exactly_one_calendar_window(window: str, now: datetime) -> None:
    start = window_start("window", window, now)
    assert start is not None
    end = window_end(window, start)
    assert start <= now < end
    assert window_start("window", window, start) == start  # a start is its own window's start
    assert window_start("window", window, end) == end  # the next window starts where this ends
    assert start.hour == start.minute == start.second == start.microsecond == 0
    if window in ("month", "quarter", "year"):
        assert start.day == 1
    if window == "week":
        assert start.weekday() == 0


@given(now=MOMENTS)
def test_the_lifetime_policy_has_no_window(now: datetime) -> None:
    assert window_start("lifetime", None, now) is None
