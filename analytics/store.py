"""The aggregate store's write side: dataset budgets, the privacy ledger, releases and runs.

The pipeline calls exactly this API::

    store = AggregateStore(settings.aggregate_store_url)   # migrates to head
    store.register_dataset(contract)                       # BudgetTermsChanged if it differs
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

Pinned terms (invariant 9): the first registration of a dataset fixes its ε cap, δ cap,
policy, window, privacy unit and rows per unit, and logs them in ``terms_changes``. A
contract that differs is refused with :class:`BudgetTermsChanged` (by ``register_dataset``
and by ``reserve``), naming every change and the command that accepts it; only
``set_terms`` (``privacy-analytics budget set``) changes them, under the dataset's row lock,
appending one entry per change. The contract version and ε per release are not pinned.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    WINDOWS,
    finite_number,
    in_window,
    install_sqlite_hooks,
    parse_url,
    safe_url,
    sqlite_path,
    storage_errors,
    window_start,
)
from analytics.queries import StoreNotCreated, TermsChange
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
    terms_changes,
)
from analytics.terms import (
    FIRST_REGISTRATION,
    LEGACY_PIN,
    PIPELINE_ACTOR,
    SettingChange,
    Terms,
    changed_message,
    diff_terms,
    format_number,
    initial_changes,
)
from privacy.budget import PrivacyLoss, check_spend
from privacy.contract import Contract
from privacy.errors import (
    BudgetExhausted,
    BudgetTermsChanged,
    ContractError,
    PipelineError,
    TermsChangeRefused,
)
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


def _insert_ignore(conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if the row was inserted."""
    dialect = conn.dialect.name
    # RETURNING tells inserted from ignored on both backends (psycopg's rowcount is -1 here)
    key = list(table.primary_key.columns)
    if dialect == "postgresql":
        pstmt = pg_dialect.insert(table).values(**values).on_conflict_do_nothing()
        result = conn.execute(pstmt.returning(*key))
    elif dialect == "sqlite":
        sstmt = sqlite_dialect.insert(table).values(**values).on_conflict_do_nothing()
        result = conn.execute(sstmt.returning(*key))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise PipelineError(f"aggregate store backend '{dialect}' is not supported")
    return result.first() is not None


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
        "values_nulled": run.values_nulled,
        "notes": run.notes,
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
        create: bool = True,
    ) -> None:
        """``create=False`` refuses to create a SQLite store that does not exist yet
        (:class:`StoreNotCreated`), for operator commands that only change an existing one."""
        self._url = parse_url(url)
        self._clock = clock
        self.reservation_timeout = reservation_timeout
        path = sqlite_path(self._url)
        kwargs: dict[str, Any] = {}
        if path is not None and not create and not path.is_file():
            raise StoreNotCreated(
                f"aggregate store {safe_url(self._url)}: no data has been published yet (the "
                "file does not exist)"
            )
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
        """Register ``contract``'s dataset, or check it against the pinned terms (and lock it).

        First registration pins the terms and logs them. Later, a contract whose terms differ
        raises BudgetTermsChanged (the transaction rolls back: nothing changes); a dataset
        registered before units were pinned gets its unit and rows pinned from this contract.
        The contract version and ε per release follow the contract.
        """
        name = contract.dataset
        want = Terms.of_contract(contract)
        per_release = float(contract.budget.epsilon_per_release)
        first = _insert_ignore(
            conn,
            datasets,
            {
                "name": name,
                "contract_version": contract.version,
                "epsilon_per_release": per_release,
                "created_at": now,
                "updated_at": now,
                **want.columns(),
            },
        )
        row = self._lock_dataset(conn, name)
        if first:
            self._log_changes(conn, name, initial_changes(want), actor=PIPELINE_ACTOR,
                              reason=FIRST_REGISTRATION, force=False, now=now)
            return row
        pinned = Terms.of_row(row._mapping)
        changes = diff_terms(pinned, want)
        refused = [c for c in changes if c.old is not None]
        if refused:
            raise BudgetTermsChanged(changed_message(name, refused, want))
        if per_release > pinned.epsilon_cap:
            raise ContractError(
                f"dataset '{name}': the contract's epsilon_per_release "
                f"{format_number(per_release)} exceeds the pinned epsilon_cap "
                f"{format_number(pinned.epsilon_cap)}; nothing was released. Lower "
                "budget.epsilon_per_release in the contract to at most the cap"
            )
        values: dict[str, Any] = {}
        pins = [c for c in changes if c.old is None]
        if pins:
            values.update(privacy_unit=want.privacy_unit, max_rows_per_unit=want.max_rows_per_unit)
            self._log_changes(conn, name, pins, actor=PIPELINE_ACTOR, reason=LEGACY_PIN,
                              force=False, now=now)
            log.info(
                "dataset '%s': privacy unit and rows per unit pinned from contract version %s",
                name,
                contract.version,
            )
        if row.contract_version != contract.version:
            values["contract_version"] = contract.version
        if row.epsilon_per_release != per_release:
            values["epsilon_per_release"] = per_release
        if not values:
            return row
        conn.execute(
            update(datasets).where(datasets.c.name == name).values(updated_at=now, **values)
        )
        return self._lock_dataset(conn, name)

    @staticmethod
    def _log_changes(
        conn: Connection,
        dataset: str,
        changes: Sequence[SettingChange],
        *,
        actor: str,
        reason: str,
        force: bool,
        now: datetime,
    ) -> list[TermsChange]:
        """Append one ``terms_changes`` entry per change (the table refuses anything else)."""
        out: list[TermsChange] = []
        for c in changes:
            forced = force and c.weakens
            entry_id = conn.execute(
                insert(terms_changes)
                .values(
                    dataset=dataset,
                    changed_at=now,
                    actor=actor,
                    reason=reason,
                    setting=c.setting,
                    old_value=c.old,
                    new_value=c.new,
                    weakens=c.weakens,
                    forced=forced,
                )
                .returning(terms_changes.c.id)
            ).scalar_one()
            out.append(
                TermsChange(
                    id=int(entry_id),
                    dataset=dataset,
                    changed_at=now,
                    actor=actor,
                    reason=reason,
                    setting=c.setting,
                    old=c.old,
                    new=c.new,
                    weakens=c.weakens,
                    forced=forced,
                )
            )
        return out

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
        """Register the contract's dataset: pin its budget terms the first time, refuse a
        contract whose terms differ from the pinned ones later.

        Raises BudgetTermsChanged naming every change (old -> new) and the
        ``privacy-analytics budget set`` command that accepts them; nothing changes then.
        The contract version and ε per release are updated from the contract.
        """
        with self._transaction() as conn:
            self._upsert_dataset(conn, contract, self._clock())

    def set_terms(
        self,
        dataset: str,
        *,
        reason: str,
        actor: str,
        force: bool = False,
        epsilon_cap: float | None = None,
        delta_cap: float | None = None,
        policy: str | None = None,
        window: str | None = None,
        privacy_unit: str | None = None,
        rows_are_people: bool = False,
        max_rows_per_unit: int | None = None,
    ) -> list[TermsChange]:
        """Change a dataset's pinned budget terms: the operator action behind
        ``privacy-analytics budget set``. Returns the log entries it appended, one per change.

        One transaction under the dataset's row lock, so a concurrent ``reserve`` sees the
        terms either before or after. Lowering a cap is always allowed (below what is spent,
        the dataset is then exhausted); a change that weakens the guarantee (raising a cap,
        any policy, window or privacy unit change) needs ``force``. Raises
        TermsChangeRefused, and changes nothing, for an unknown dataset, a change that
        needs ``force`` without it, a change to nothing, or settings that contradict.
        """
        reason = " ".join(str(reason).split())
        actor = " ".join(str(actor).split())
        if not reason:
            raise TermsChangeRefused(
                f"dataset '{dataset}': say why the terms change with --reason \"...\"; "
                "nothing was changed"
            )
        if not actor or len(actor) > 255:
            raise TermsChangeRefused(
                f"dataset '{dataset}': the actor must be a name of 1 to 255 characters; "
                "nothing was changed"
            )
        requested = (epsilon_cap, delta_cap, policy, window, privacy_unit, max_rows_per_unit)
        if all(v is None for v in requested) and not rows_are_people:
            raise TermsChangeRefused(
                f"dataset '{dataset}': nothing to change: give at least one of --epsilon-cap, "
                "--delta-cap, --policy, --window, --privacy-unit, --rows-are-people, "
                "--max-rows-per-unit"
            )
        now = self._clock()
        with self._transaction() as conn:
            row = conn.execute(
                select(datasets).where(datasets.c.name == dataset).with_for_update()
            ).one_or_none()
            if row is None:
                known = conn.execute(select(datasets.c.name).order_by(datasets.c.name)).scalars()
                raise TermsChangeRefused(
                    f"no dataset '{dataset}' in the aggregate store (known: "
                    f"{', '.join(known) or 'none yet'}); a dataset appears after its first "
                    "file is processed"
                )
            old = Terms.of_row(row._mapping)
            new = _requested_terms(
                dataset,
                old,
                epsilon_cap=epsilon_cap,
                delta_cap=delta_cap,
                policy=policy,
                window=window,
                privacy_unit=privacy_unit,
                rows_are_people=rows_are_people,
                max_rows_per_unit=max_rows_per_unit,
            )
            changes = diff_terms(old, new)
            if not changes:
                raise TermsChangeRefused(
                    f"dataset '{dataset}': nothing to change: the pinned terms already are "
                    "what was asked for"
                )
            weakening = [c for c in changes if c.weakens]
            if weakening and not force:
                listed = ", ".join(str(c) for c in weakening)
                what = (
                    "this change weakens the guarantee and needs"
                    if len(weakening) == 1
                    else "these changes weaken the guarantee and need"
                )
                raise TermsChangeRefused(
                    f"dataset '{dataset}': {what} --force: {listed}; nothing was changed. "
                    "If your privacy policy allows it, run again with --force"
                )
            conn.execute(
                update(datasets)
                .where(datasets.c.name == dataset)
                .values(updated_at=now, **new.columns())
            )
            return self._log_changes(conn, dataset, changes, actor=actor, reason=reason,
                                     force=force, now=now)

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


def _refuse(dataset: str, problem: str) -> TermsChangeRefused:
    return TermsChangeRefused(f"dataset '{dataset}': {problem}; nothing was changed")


def _requested_terms(
    dataset: str,
    old: Terms,
    *,
    epsilon_cap: float | None,
    delta_cap: float | None,
    policy: str | None,
    window: str | None,
    privacy_unit: str | None,
    rows_are_people: bool,
    max_rows_per_unit: int | None,
) -> Terms:
    """The terms ``set_terms`` asks for: ``old`` with the given settings replaced."""
    if epsilon_cap is not None and (not finite_number(epsilon_cap) or epsilon_cap <= 0):
        raise _refuse(dataset, "the ε cap must be a finite number above 0")
    if delta_cap is not None and (not finite_number(delta_cap) or not 0 <= delta_cap < 1):
        raise _refuse(dataset, "the δ cap must be a finite number in [0, 1)")
    new_policy = old.policy if policy is None else policy
    if new_policy not in ("lifetime", "window"):
        raise _refuse(dataset, "the policy is lifetime or window")
    if window is not None and window not in WINDOWS:
        raise _refuse(dataset, f"the window is one of {', '.join(WINDOWS)}")
    if new_policy == "lifetime":
        if window is not None:
            raise _refuse(dataset, "a window applies only to policy window: add --policy window")
        new_window = None
    else:
        new_window = window or old.window
        if new_window is None:
            raise _refuse(dataset, f"policy window needs --window {'|'.join(WINDOWS)}")
    if max_rows_per_unit is not None and not 1 <= max_rows_per_unit <= 10_000:
        raise _refuse(dataset, "rows per unit must be a whole number from 1 to 10000")
    if privacy_unit is not None and rows_are_people:
        raise _refuse(dataset, "give --privacy-unit COLUMN or --rows-are-people, not both")
    unit, rows = old.privacy_unit, old.max_rows_per_unit
    if rows_are_people:
        if max_rows_per_unit not in (None, 1):
            raise _refuse(
                dataset,
                "rows are people means one row per person: drop --max-rows-per-unit, or name "
                "the person column with --privacy-unit",
            )
        unit, rows = None, 1
    elif privacy_unit is not None:
        if not privacy_unit.strip() or len(privacy_unit) > 255:
            raise _refuse(dataset, "the privacy unit is a column name of 1 to 255 characters")
        unit, rows = privacy_unit, max_rows_per_unit or old.max_rows_per_unit
        if rows is None:
            raise _refuse(
                dataset,
                "it has no pinned rows per unit yet: give --max-rows-per-unit N with "
                "--privacy-unit",
            )
    elif max_rows_per_unit is not None:
        if not old.unit_pinned:
            raise _refuse(
                dataset,
                "it has no pinned privacy unit yet: give --privacy-unit COLUMN or "
                "--rows-are-people with --max-rows-per-unit",
            )
        if old.rows_are_people and max_rows_per_unit != 1:
            raise _refuse(
                dataset,
                "its rows are people (one row per person): name the person column with "
                "--privacy-unit COLUMN as well",
            )
        rows = max_rows_per_unit
    return Terms(
        epsilon_cap=old.epsilon_cap if epsilon_cap is None else float(epsilon_cap),
        delta_cap=old.delta_cap if delta_cap is None else float(delta_cap),
        policy=new_policy,
        window=new_window,
        privacy_unit=unit,
        max_rows_per_unit=rows,
    )


def make_revision(url: str, message: str, rev_id: str | None = None) -> None:
    """Developer helper: autogenerate a migration from ``analytics.schema`` against ``url``."""
    store = AggregateStore(url)
    with store._transaction() as conn:
        cfg = store._alembic_config(conn)
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
    store.close()
