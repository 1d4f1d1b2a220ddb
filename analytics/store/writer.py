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
spend in the current window (``analytics.store.spend``) and refuses with
:class:`BudgetExhausted` before anything is released. ``publish`` commits the actual spend,
the aggregates, the run record and the object version in one transaction, so a crash leaves
neither spend nor values. A reservation older than ``reservation_timeout`` belongs to a
crashed run: it released nothing, so it no longer counts (and cannot be published without a
fresh budget check).

Exactly-once (invariant 6): ``published_objects`` has one row per (bucket, key, etag);
publishing an object version again cancels the reservation and returns False.

Pinned terms (invariant 9): ``register_dataset`` and ``reserve`` refuse a contract that
changes them; only ``set_terms`` changes them (``analytics.store.pinning``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, func, insert, select, update
from sqlalchemy import exc as sa_exc

from analytics.store import pinning
from analytics.store._db import (
    DEFAULT_RESERVATION_TIMEOUT,
    READ_ONLY_OPTION,
    StoreHandle,
    finite_number,
    install_sqlite_hooks,
    safe_url,
    sqlite_path,
    storage_errors,
)
from analytics.store._sql import upsert
from analytics.store.dataset_releases import dataset_files, insert_coverage, latest_covered
from analytics.store.errors import StoreNotCreated
from analytics.store.records import (
    Coverage,
    DatasetFile,
    ObjectVersion,
    Reservation,
    RunRecord,
    utcnow,
)
from analytics.store.release_sets import check_loss, insert_releases, release_set_problem
from analytics.store.rows import TermsChange
from analytics.store.runs import record_completed, record_duplicate, record_run
from analytics.store.schema import calibrations, ledger, published_objects
from analytics.store.spend import cap_of, check_budget, ledger_values, load_spend, window_start
from privacy.budget import Loss, ZCDPLoss
from privacy.errors import BudgetExhausted, PipelineError

if TYPE_CHECKING:
    from privacy.contract import Contract
    from privacy.results import ReleaseSet

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: pg_advisory_xact_lock key serialising schema migrations ("pa-mig" in ASCII)
_MIGRATION_LOCK = 0x70612D6D6967


class AggregateStore(StoreHandle):
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
        super().__init__(url, reservation_timeout=reservation_timeout, clock=clock)
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

    # ------------------------------------------------------------------ datasets

    def register_dataset(self, contract: Contract) -> None:
        """Register the contract's dataset: pin its budget terms the first time, refuse a
        contract whose terms differ from the pinned ones later.

        Raises BudgetTermsChanged naming every change (old -> new) and the
        ``privacy-analytics budget set`` command that accepts them; nothing changes then.
        The contract version and ε and δ per release are updated from the contract.
        """
        with self._transaction() as conn:
            pinning.register(conn, contract, self._clock())

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
        request = pinning.TermsRequest(
            epsilon_cap=epsilon_cap,
            delta_cap=delta_cap,
            policy=policy,
            window=window,
            privacy_unit=privacy_unit,
            rows_are_people=rows_are_people,
            max_rows_per_unit=max_rows_per_unit,
        )
        reason, actor = pinning.check_request(dataset, request, reason=reason, actor=actor)
        now = self._clock()
        with self._transaction() as conn:
            return pinning.change_terms(conn, dataset, request, reason=reason, actor=actor,
                                        force=force, now=now)

    # ------------------------------------------------------------------ ledger

    @staticmethod
    def _published_by(conn: Connection, obj: ObjectVersion) -> str | None:
        return conn.execute(
            select(published_objects.c.run_id).where(
                *(published_objects.c[name] == value for name, value in obj.columns().items())
            )
        ).scalar_one_or_none()

    def find_published(self, obj: ObjectVersion) -> str | None:
        """The run id that published this object version, or None."""
        with self._reading() as conn:
            return self._published_by(conn, obj)

    def reserve(
        self, contract: Contract, loss: Loss, *, obj: ObjectVersion, run_id: str
    ) -> Reservation:
        """Set ``loss`` aside for one object version, or raise BudgetExhausted.

        One short transaction: lock the dataset, sum committed and live reserved spend in
        the current window, check, insert a ``reserved`` ledger entry.
        """
        check_loss(loss, f"dataset '{contract.dataset}': pending loss")
        now = self._clock()
        with self._transaction() as conn:
            ds = pinning.register(conn, contract, now)
            start = window_start(ds.policy, ds.window, now)
            if isinstance(loss, ZCDPLoss) != (ds.accounting == "zcdp"):
                raise PipelineError(
                    f"dataset '{contract.dataset}' is accounted under '{ds.accounting}': a "
                    f"reservation of {loss} does not fit it; nothing was released"
                )
            spend = load_spend(conn, ds, now=now, live_after=self._live_after(now))
            check_budget(contract.dataset, loss, cap_of(ds), spend)
            ledger_id = conn.execute(
                insert(ledger)
                .values(
                    dataset=contract.dataset,
                    run_id=run_id,
                    **obj.columns(),
                    **ledger_values(loss, ds.delta_cap),
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

    def publish(
        self, reservation: Reservation, release_set: ReleaseSet, run: RunRecord,
        coverage: Coverage | None = None,
    ) -> bool:  # fmt: skip
        """Commit the spend, the aggregates, the run record and the object version together
        (``coverage``: a dataset release, and the files it read, in the same transaction).

        Returns False (and cancels the reservation) if this object version was already
        published. Refuses a release set whose loss exceeds the reservation.
        """
        if coverage is not None and coverage.obj != reservation.obj:
            self.cancel(reservation)
            raise PipelineError(
                f"dataset '{reservation.dataset}': the coverage names another release than "
                "the reservation; nothing was published"
            )
        problem = release_set_problem(reservation, release_set)
        if problem is not None:
            self.cancel(reservation)
            raise PipelineError(
                f"dataset '{reservation.dataset}': {problem}; nothing was published"
            )
        try:
            return self._publish(reservation, release_set, run, coverage)
        except BudgetExhausted:
            self.cancel(reservation)
            raise
        except sa_exc.IntegrityError:
            # a concurrent publisher won the (bucket, key, etag) race: that is a duplicate
            if self.find_published(reservation.obj) is None:
                raise
            return self._publish(reservation, release_set, run, coverage)

    def _publish(
        self, reservation: Reservation, release_set: ReleaseSet, run: RunRecord,
        coverage: Coverage | None,
    ) -> bool:  # fmt: skip
        now = self._clock()
        obj = reservation.obj
        with self._transaction() as conn:
            ds = pinning.lock_dataset(conn, reservation.dataset)
            entry = conn.execute(
                select(ledger).where(ledger.c.id == reservation.id)
            ).one_or_none()
            if entry is None or entry.dataset != reservation.dataset:
                raise PipelineError(
                    f"dataset '{reservation.dataset}': no ledger entry {reservation.id}; "
                    "reserve the budget before publishing"
                )
            published_by = self._published_by(conn, obj)
            if published_by is not None:
                self._cancel(conn, reservation.id, now)
                if published_by != run.run_id:
                    record_duplicate(conn, run, published_by, now)
                return False
            if entry.state != "reserved":
                raise PipelineError(
                    f"dataset '{reservation.dataset}': ledger entry {reservation.id} is "
                    f"{entry.state}; reserve the budget again"
                )
            if entry.created_at <= self._live_after(now):
                # the reservation expired (it stopped counting): check the budget afresh
                spend = load_spend(conn, ds, now=now, live_after=self._live_after(now),
                                   exclude_id=entry.id)
                check_budget(reservation.dataset, release_set.loss, cap_of(ds), spend)
            spent = ledger_values(release_set.loss, ds.delta_cap)
            conn.execute(
                update(ledger)
                .where(ledger.c.id == entry.id)
                .values(state="committed", **spent, committed_at=now)
            )
            self._insert_releases(conn, reservation, release_set, run, now, ds.delta_cap)
            if coverage is not None:
                insert_coverage(conn, entry.id, coverage, now)
            assert spent["epsilon"] is not None
            record_completed(conn, run, now, epsilon=spent["epsilon"], delta=release_set.loss.delta)
            conn.execute(
                insert(published_objects).values(
                    **obj.columns(), dataset=reservation.dataset, run_id=run.run_id,
                    published_at=now,
                )
            )
        return True

    # an attribute of the store, so the crash tests can stop a publish right after the
    # releases are in
    _insert_releases = staticmethod(insert_releases)

    # ------------------------------------------------------------------ dataset releases

    def dataset_files(self, dataset: str) -> list[DatasetFile]:
        """The files of ``dataset`` a dataset release reads: the newest version of each
        object key that a run validated and masked, oldest first."""
        with self._reading() as conn:
            return dataset_files(conn, dataset)

    def files_since_dataset_release(self, dataset: str) -> int:
        """How many of the dataset's files its latest dataset release did not read."""
        with self._reading() as conn:
            covered = latest_covered(conn, dataset)
            files = dataset_files(conn, dataset)
        return sum(1 for f in files if tuple(f.obj.columns().values()) not in covered)

    def record_masked(self, run: RunRecord) -> bool:
        """A file validated and masked that has no release of its own (``release.per_file:
        false``): its run (``masked``) and its object version, done, in one transaction, so
        duplicates and the sweep skip it as they skip a published one. False: the version
        was done already (by another run: recorded as a duplicate)."""
        now = self._clock()
        try:
            with self._transaction() as conn:
                prior = self._published_by(conn, run.obj)
                if prior is not None:
                    if prior != run.run_id:
                        record_duplicate(conn, run, prior, now)
                    return False
                record_run(conn, run, now, status="masked", finished_at=run.finished_at or now)
                conn.execute(insert(published_objects).values(
                    **run.obj.columns(), dataset=run.dataset, run_id=run.run_id, published_at=now,
                ))
        except sa_exc.IntegrityError:  # a concurrent run recorded the same version first
            return False
        return True

    # ------------------------------------------------------------------ runs

    def record_run(self, run: RunRecord) -> None:
        """Insert or update a run record by its run id (the first start time is kept)."""
        now = self._clock()
        with self._transaction() as conn:
            record_run(conn, run, now)

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
            upsert(
                conn,
                calibrations,
                "key",
                {"key": key, "scale": float(scale), "created_at": self._clock()},
            )


def make_revision(url: str, message: str, rev_id: str | None = None) -> None:
    """Developer helper: autogenerate a migration from ``analytics.store.schema`` against
    ``url``."""
    store = AggregateStore(url)
    with store._transaction() as conn:
        cfg = store._alembic_config(conn)
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
    store.close()
