"""The aggregate store's write side: dataset budgets, the privacy ledger, releases and runs.

The pipeline calls exactly this API::

    store = AggregateStore(settings.aggregate_store_url)   # migrates to head
    store.register_dataset(contract)
    if store.find_published(obj) is None:
        reservation = store.reserve(contract, planned_loss, obj=obj, run_id=run_id)
        try:
            release_set = ...                                # DP releases through OpenDP
        except BaseException:
            store.cancel(reservation)
            raise
        store.publish(reservation, release_set, run)        # ledger + values + run, one commit

Budget safety (invariant 3): ``reserve`` locks the dataset (SQLite: BEGIN IMMEDIATE;
PostgreSQL: ``SELECT ... FOR UPDATE`` on its row), sums the committed and live reserved
spend in the current window and refuses with :class:`BudgetExhausted` before anything is
released. ``publish`` commits the actual spend, the aggregates, the run record and the
object version in one transaction, so a crash leaves neither spend nor values. A
reservation older than ``reservation_timeout`` belongs to a crashed run: it released
nothing, so it no longer counts (and cannot be published without a fresh budget check).

Budget policies: ``lifetime`` (the default) adds every spend up forever. ``window`` resets
the spend at the start of each calendar period (day, ISO week, month, quarter or year, in
UTC). That is a weaker guarantee: a person present in many periods loses ε per period, so
the total loss over the dataset's life has no bound. Choose it only when each period's
data are about different people, or when your privacy policy accepts a per-period bound.

Exactly-once (invariant 6): ``published_objects`` has one row per (bucket, key, etag);
publishing an object version again cancels the reservation and returns False.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Row,
    and_,
    case,
    create_engine,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql.schema import Table

from analytics._db import (
    DEFAULT_RESERVATION_TIMEOUT,
    READ_ONLY_OPTION,
    finite_number,
    in_window,
    install_sqlite_hooks,
    parse_url,
    safe_url,
    sqlite_path,
    storage_errors,
    window_start,
)
from analytics.records import ObjectVersion, RunRecord, utcnow
from analytics.schema import (
    calibrations,
    canonical_group,
    datasets,
    insights,
    ledger,
    published_objects,
    published_values,
    releases,
    runs,
)
from privacy.budget import PrivacyLoss, check_spend
from privacy.contract import Contract
from privacy.errors import BudgetExhausted, PipelineError
from privacy.results import ReleaseSet

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key serialising schema migrations ("pa-mig" in ASCII)
_MIGRATION_LOCK = 0x70612D6D6967


@dataclass(frozen=True)
class Reservation:
    """A ``reserved`` ledger entry: budget set aside for one object version's releases."""

    id: int
    dataset: str
    run_id: str
    obj: ObjectVersion
    loss: PrivacyLoss
    created_at: datetime
    window_start: datetime | None = None


@dataclass(frozen=True)
class Spend:
    """Committed and live-reserved spend of a dataset in its current window."""

    committed_epsilon: float = 0.0
    committed_delta: float = 0.0
    reserved_epsilon: float = 0.0
    reserved_delta: float = 0.0

    @property
    def total(self) -> PrivacyLoss | None:
        eps = self.committed_epsilon + self.reserved_epsilon
        if eps <= 0:
            return None
        return PrivacyLoss(eps, self.committed_delta + self.reserved_delta)


def _check_loss(loss: PrivacyLoss, what: str) -> None:
    """Refuse a loss that is not finite and positive, even one built around PrivacyLoss's
    own checks (its constructor already refuses them)."""
    if not isinstance(loss, PrivacyLoss):
        raise PipelineError(f"{what} must be a PrivacyLoss, got {type(loss).__name__}")
    if not finite_number(loss.epsilon) or loss.epsilon <= 0:
        raise PipelineError(f"{what}: ε must be finite and positive, got {loss.epsilon!r}")
    if not finite_number(loss.delta) or not 0 <= loss.delta < 1:
        raise PipelineError(f"{what}: δ must be finite and in [0, 1), got {loss.delta!r}")


def _insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any]) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(pg_dialect.insert(table).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        conn.execute(sqlite_dialect.insert(table).values(**values).on_conflict_do_nothing())
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise PipelineError(f"aggregate store backend '{dialect}' is not supported")


def _upsert(
    conn: Connection, table: Table, key: str, values: Mapping[str, Any], keep: tuple[str, ...] = ()
) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE, leaving the ``keep`` columns as they were."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        pstmt = pg_dialect.insert(table).values(**values)
        pset = {c: pstmt.excluded[c] for c in values if c != key and c not in keep}
        conn.execute(pstmt.on_conflict_do_update(index_elements=[table.c[key]], set_=pset))
    elif dialect == "sqlite":
        sstmt = sqlite_dialect.insert(table).values(**values)
        sset = {c: sstmt.excluded[c] for c in values if c != key and c not in keep}
        conn.execute(sstmt.on_conflict_do_update(index_elements=[table.c[key]], set_=sset))
    else:  # pragma: no cover
        raise PipelineError(f"aggregate store backend '{dialect}' is not supported")


def _run_values(run: RunRecord, now: datetime, **override: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "run_id": run.run_id,
        "dataset": run.dataset,
        "bucket": run.obj.bucket,
        "key": run.obj.key,
        "etag": run.obj.etag,
        "size": run.obj.size,
        "status": run.status,
        "rows_in": run.rows_in,
        "rows_out": run.rows_out,
        "rows_suppressed": run.rows_suppressed,
        "columns_dropped": run.columns_dropped,
        "columns_pseudonymized": run.columns_pseudonymized,
        "columns_generalized": run.columns_generalized,
        "epsilon_spent": float(run.epsilon_spent or 0.0),
        "delta_spent": float(run.delta_spent or 0.0),
        "reason": run.reason,
        "flow_run_url": run.flow_run_url,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "updated_at": now,
    }
    values.update(override)
    return values


def _check_release_set(reservation: Reservation, release_set: ReleaseSet) -> str | None:
    """Why ``release_set`` cannot be published under ``reservation`` (None if it can)."""
    if release_set.dataset != reservation.dataset:
        return (
            f"release set is for dataset '{release_set.dataset}' but the reservation is for "
            f"'{reservation.dataset}'"
        )
    try:
        _check_loss(release_set.loss, "release set loss")
    except PipelineError as exc:
        return str(exc)
    if not release_set.loss.fits_within(reservation.loss):
        return (
            f"actual loss {release_set.loss} exceeds the reserved {reservation.loss}; "
            "reserve the full cost before releasing"
        )
    for rel in release_set.releases:
        if rel.loss is not None:
            try:
                _check_loss(rel.loss, f"release '{rel.name}'")
            except PipelineError as exc:
                return str(exc)
        for v in rel.values:
            if not finite_number(v.value):
                return f"release '{rel.name}': a '{v.metric}' value is not a finite number"
            for name, x in (("lower", v.lower), ("upper", v.upper), ("scale", v.scale)):
                if x is not None and (not isinstance(x, int | float) or math.isnan(x)):
                    return f"release '{rel.name}': a '{v.metric}' {name} is not a number"
    return None


class AggregateStore:
    """Read-write access to the aggregate store (SQLite file or PostgreSQL).

    Opening migrates the schema to head; concurrent first opens migrate once.

    >>> store = AggregateStore("sqlite:////tmp/pa-doc/aggregates.db")  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str,
        *,
        reservation_timeout: timedelta = DEFAULT_RESERVATION_TIMEOUT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._url = parse_url(url)
        self._clock = clock
        self.reservation_timeout = reservation_timeout
        path = sqlite_path(self._url)
        kwargs: dict[str, Any] = {}
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise PipelineError(
                    f"aggregate store {safe_url(self._url)}: cannot create folder "
                    f"{path.parent} ({type(exc).__name__}); check PA_STATE_DIR / PA_STORE_URL"
                ) from None
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30.0}
        else:
            kwargs["pool_pre_ping"] = True
        self._engine = create_engine(self._url, **kwargs)
        if path is not None:
            install_sqlite_hooks(self._engine, immediate=True)
        self._migrate()

    # ------------------------------------------------------------------ plumbing

    @property
    def url(self) -> str:
        """The store URL without its password."""
        return safe_url(self._url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> AggregateStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with storage_errors(self._url), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with storage_errors(self._url), self._engine.connect() as conn:
            conn.execution_options(**{READ_ONLY_OPTION: True})
            with conn.begin():
                yield conn

    def _alembic_config(self, conn: Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        cfg.attributes["connection"] = conn
        return cfg

    def _migrate(self) -> None:
        with self._transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            command.upgrade(self._alembic_config(conn), "head")

    def _live_after(self, now: datetime) -> datetime:
        return now - self.reservation_timeout

    def _lock_dataset(self, conn: Connection, dataset: str) -> Row[Any]:
        row = conn.execute(
            select(datasets).where(datasets.c.name == dataset).with_for_update()
        ).one_or_none()
        if row is None:
            raise PipelineError(
                f"dataset '{dataset}' is not registered in the aggregate store; "
                "register its contract first"
            )
        return row

    def _upsert_dataset(self, conn: Connection, contract: Contract, now: datetime) -> Row[Any]:
        b = contract.budget
        want: dict[str, Any] = {
            "contract_version": contract.version,
            "epsilon_cap": float(b.epsilon_cap),
            "delta_cap": float(b.delta),
            "epsilon_per_release": float(b.epsilon_per_release),
            "policy": b.policy,
            "window": b.window if b.policy == "window" else None,
        }
        name = contract.dataset
        _insert_ignore(conn, datasets, {"name": name, "created_at": now, "updated_at": now, **want})
        row = self._lock_dataset(conn, name)
        changed = {k: (row._mapping[k], v) for k, v in want.items() if row._mapping[k] != v}
        if not changed:
            return row
        budget_keys = ("epsilon_cap", "delta_cap", "policy", "window")
        if any(k in changed for k in budget_keys):
            log.warning(
                "dataset '%s': budget changed by contract version %s: %s",
                name,
                contract.version,
                ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()
                          if k in budget_keys),
            )
        conn.execute(
            update(datasets).where(datasets.c.name == name).values(updated_at=now, **want)
        )
        return self._lock_dataset(conn, name)

    def _spend(
        self,
        conn: Connection,
        ds: Row[Any],
        now: datetime,
        exclude_id: int | None = None,
    ) -> Spend:
        committed = ledger.c.state == "committed"
        live = and_(ledger.c.state == "reserved", ledger.c.created_at > self._live_after(now))
        cond = and_(ledger.c.dataset == ds.name, or_(committed, live))
        window = in_window(ledger.c.created_at, ds.policy, ds.window, now)
        if window is not None:
            cond = and_(cond, window)
        if exclude_id is not None:
            cond = and_(cond, ledger.c.id != exclude_id)
        row = conn.execute(
            select(
                func.coalesce(func.sum(case((committed, ledger.c.epsilon), else_=0.0)), 0.0),
                func.coalesce(func.sum(case((committed, ledger.c.delta), else_=0.0)), 0.0),
                func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.epsilon)), 0.0),
                func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.delta)), 0.0),
            ).where(cond)
        ).one()
        return Spend(*(float(x) for x in row))

    @staticmethod
    def _check_budget(dataset: str, pending: PrivacyLoss, ds: Row[Any], spend: Spend) -> None:
        cap = PrivacyLoss(ds.epsilon_cap, ds.delta_cap)
        try:
            check_spend(dataset, pending, spend.total, cap)
        except BudgetExhausted as exc:
            if spend.reserved_epsilon > 0:
                raise BudgetExhausted(
                    f"{exc} (spent includes ε={spend.reserved_epsilon:g}, "
                    f"δ={spend.reserved_delta:g} reserved by runs still in progress)"
                ) from None
            raise

    # ------------------------------------------------------------------ datasets

    def register_dataset(self, contract: Contract) -> None:
        """Create or update the dataset's row (cap, policy, window) from its contract."""
        with self._transaction() as conn:
            self._upsert_dataset(conn, contract, self._clock())

    # ------------------------------------------------------------------ ledger

    def find_published(self, obj: ObjectVersion) -> str | None:
        """The run id that published this object version, or None."""
        with self._reading() as conn:
            return conn.execute(
                select(published_objects.c.run_id).where(
                    published_objects.c.bucket == obj.bucket,
                    published_objects.c.key == obj.key,
                    published_objects.c.etag == obj.etag,
                )
            ).scalar_one_or_none()

    def reserve(
        self, contract: Contract, loss: PrivacyLoss, *, obj: ObjectVersion, run_id: str
    ) -> Reservation:
        """Set ``loss`` aside for one object version, or raise BudgetExhausted.

        One short transaction: lock the dataset, sum committed and live reserved spend in
        the current window, check, insert a ``reserved`` ledger entry.
        """
        _check_loss(loss, f"dataset '{contract.dataset}': pending loss")
        now = self._clock()
        with self._transaction() as conn:
            ds = self._upsert_dataset(conn, contract, now)
            start = window_start(ds.policy, ds.window, now)
            spend = self._spend(conn, ds, now)
            self._check_budget(contract.dataset, loss, ds, spend)
            ledger_id = conn.execute(
                insert(ledger)
                .values(
                    dataset=contract.dataset,
                    run_id=run_id,
                    bucket=obj.bucket,
                    key=obj.key,
                    etag=obj.etag,
                    epsilon=loss.epsilon,
                    delta=loss.delta,
                    state="reserved",
                    window_start=start,
                    created_at=now,
                )
                .returning(ledger.c.id)
            ).scalar_one()
        return Reservation(
            id=int(ledger_id),
            dataset=contract.dataset,
            run_id=run_id,
            obj=obj,
            loss=loss,
            created_at=now,
            window_start=start,
        )

    def cancel(self, reservation: Reservation) -> None:
        """Release a reservation that will not be published (no-op once committed)."""
        with self._transaction() as conn:
            self._cancel(conn, reservation.id, self._clock())

    @staticmethod
    def _cancel(conn: Connection, ledger_id: int, now: datetime) -> None:
        conn.execute(
            update(ledger)
            .where(ledger.c.id == ledger_id, ledger.c.state == "reserved")
            .values(state="cancelled", cancelled_at=now)
        )

    def publish(self, reservation: Reservation, release_set: ReleaseSet, run: RunRecord) -> bool:
        """Commit the spend, the aggregates, the run record and the object version together.

        Returns False (and cancels the reservation) if this object version was already
        published. Refuses a release set whose loss exceeds the reservation.
        """
        problem = _check_release_set(reservation, release_set)
        if problem is not None:
            self.cancel(reservation)
            raise PipelineError(
                f"dataset '{reservation.dataset}': {problem}; nothing was published"
            )
        try:
            return self._publish(reservation, release_set, run)
        except BudgetExhausted:
            self.cancel(reservation)
            raise
        except sa_exc.IntegrityError:
            # a concurrent publisher won the (bucket, key, etag) race: that is a duplicate
            if self.find_published(reservation.obj) is None:
                raise
            return self._publish(reservation, release_set, run)

    def _publish(self, reservation: Reservation, release_set: ReleaseSet, run: RunRecord) -> bool:
        now = self._clock()
        obj = reservation.obj
        with self._transaction() as conn:
            ds = self._lock_dataset(conn, reservation.dataset)
            entry = conn.execute(
                select(ledger).where(ledger.c.id == reservation.id)
            ).one_or_none()
            if entry is None or entry.dataset != reservation.dataset:
                raise PipelineError(
                    f"dataset '{reservation.dataset}': no ledger entry {reservation.id}; "
                    "reserve the budget before publishing"
                )
            published_by = conn.execute(
                select(published_objects.c.run_id).where(
                    published_objects.c.bucket == obj.bucket,
                    published_objects.c.key == obj.key,
                    published_objects.c.etag == obj.etag,
                )
            ).scalar_one_or_none()
            if published_by is not None:
                self._cancel(conn, reservation.id, now)
                if published_by != run.run_id:
                    reason = (
                        f"this object version was already published by run {published_by}; "
                        "nothing new was released and no budget was spent"
                    )
                    _upsert(
                        conn,
                        runs,
                        "run_id",
                        _run_values(
                            run,
                            now,
                            status="duplicate",
                            epsilon_spent=0.0,
                            delta_spent=0.0,
                            reason=reason,
                            finished_at=run.finished_at or now,
                        ),
                        keep=("started_at",),
                    )
                return False
            if entry.state != "reserved":
                raise PipelineError(
                    f"dataset '{reservation.dataset}': ledger entry {reservation.id} is "
                    f"{entry.state}; reserve the budget again"
                )
            if entry.created_at <= self._live_after(now):
                # the reservation expired (it stopped counting): check the budget afresh
                spend = self._spend(conn, ds, now, exclude_id=entry.id)
                self._check_budget(reservation.dataset, release_set.loss, ds, spend)
            loss = release_set.loss
            conn.execute(
                update(ledger)
                .where(ledger.c.id == entry.id)
                .values(
                    state="committed",
                    epsilon=loss.epsilon,
                    delta=loss.delta,
                    committed_at=now,
                )
            )
            self._insert_releases(conn, reservation, release_set, run, now)
            _upsert(
                conn,
                runs,
                "run_id",
                _run_values(
                    run,
                    now,
                    status="completed",
                    epsilon_spent=loss.epsilon,
                    delta_spent=loss.delta,
                    finished_at=run.finished_at or now,
                ),
                keep=("started_at",),
            )
            conn.execute(
                insert(published_objects).values(
                    bucket=obj.bucket,
                    key=obj.key,
                    etag=obj.etag,
                    dataset=reservation.dataset,
                    run_id=run.run_id,
                    published_at=now,
                )
            )
        return True

    def _insert_releases(
        self,
        conn: Connection,
        reservation: Reservation,
        release_set: ReleaseSet,
        run: RunRecord,
        now: datetime,
    ) -> None:
        obj = reservation.obj
        for rel in release_set.releases:
            release_id = conn.execute(
                insert(releases)
                .values(
                    dataset=release_set.dataset,
                    ledger_id=reservation.id,
                    analysis=rel.analysis,
                    name=rel.name,
                    mechanism=rel.mechanism,
                    epsilon=rel.loss.epsilon if rel.loss else None,
                    delta=rel.loss.delta if rel.loss else None,
                    contract_version=release_set.contract_version,
                    bucket=obj.bucket,
                    key=obj.key,
                    etag=obj.etag,
                    run_id=run.run_id,
                    created_at=now,
                )
                .returning(releases.c.id)
            ).scalar_one()
            if rel.values:
                conn.execute(
                    insert(published_values),
                    [
                        {
                            "release_id": release_id,
                            "metric": v.metric,
                            "column": v.column,
                            "group_json": canonical_group(v.group),
                            "value": float(v.value),
                            "lower": None if v.lower is None else float(v.lower),
                            "upper": None if v.upper is None else float(v.upper),
                            "scale": None if v.scale is None else float(v.scale),
                        }
                        for v in rel.values
                    ],
                )
            if rel.insights:
                conn.execute(
                    insert(insights),
                    [
                        {"release_id": release_id, "text": text, "position": i}
                        for i, text in enumerate(rel.insights)
                    ],
                )

    # ------------------------------------------------------------------ runs

    def record_run(self, run: RunRecord) -> None:
        """Insert or update a run record by its run id (the first start time is kept)."""
        now = self._clock()
        with self._transaction() as conn:
            _upsert(conn, runs, "run_id", _run_values(run, now), keep=("started_at",))

    # ------------------------------------------------------------------ calibration cache

    def calibration_get(self, key: str) -> float | None:
        """A noise scale cached by the DP engine for ``key`` (contract fingerprint + query)."""
        with self._reading() as conn:
            value = conn.execute(
                select(calibrations.c.scale).where(calibrations.c.key == key)
            ).scalar_one_or_none()
        return None if value is None else float(value)

    def calibration_put(self, key: str, scale: float) -> None:
        if not finite_number(scale) or scale < 0:
            raise PipelineError(f"calibration '{key}': scale must be a finite number >= 0")
        with self._transaction() as conn:
            _upsert(
                conn,
                calibrations,
                "key",
                {"key": key, "scale": float(scale), "created_at": self._clock()},
            )


def make_revision(url: str, message: str, rev_id: str | None = None) -> None:
    """Developer helper: autogenerate a migration from ``analytics.schema`` against ``url``."""
    store = AggregateStore(url)
    with store._transaction() as conn:
        cfg = store._alembic_config(conn)
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
    store.close()
