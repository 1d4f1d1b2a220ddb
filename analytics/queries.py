"""Read-only queries on the aggregate store: the only module the dashboard imports.

It opens the store read-only and never writes: SQLite through a ``file:...?mode=ro`` URI,
PostgreSQL with ``default_transaction_read_only=on`` on every connection. In production,
connect as the read-only role of ``analytics/sql/readonly_role.sql`` as well, so the
database itself refuses writes whatever the client does.

Everything here is an aggregate, a count or bookkeeping; the store holds nothing else.

    store = ReadOnlyStore(url)           # never connects until the first query
    remaining = {d.name: d.epsilon_remaining for d in store.datasets()}
    history = store.terms_changes("employees")   # pinned budget terms and their changes
    marker = store.change_marker()       # poll it; refresh the page when it changes
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Row, and_, case, create_engine, func, or_, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from analytics._db import (
    DEFAULT_RESERVATION_TIMEOUT,
    in_window,
    install_sqlite_hooks,
    parse_url,
    safe_url,
    sqlite_path,
    storage_errors,
    window_start,
)
from analytics.records import utcnow
from analytics.schema import (
    datasets,
    insights,
    ledger,
    published_values,
    releases,
    runs,
    terms_changes,
)
from privacy.errors import PipelineError, StorageUnavailable

__all__ = [
    "BudgetStatus",
    "DatasetSummary",
    "LedgerEntry",
    "ReadOnlyStore",
    "ReleaseInfo",
    "RunRow",
    "StoreNotCreated",
    "TermsChange",
    "UnknownDataset",
    "ValueRow",
]

_START_HINT = (
    "start the pipeline ('privacy-analytics up'), which creates and migrates the store, "
    "and drop a file into landing/<dataset>/"
)
_SCHEMA_HINT = "if nothing has been published yet, " + _START_HINT
_UNDEFINED_TABLE = "42P01"  # PostgreSQL: relation does not exist

#: relative tolerance absorbing float summation error when deciding "exhausted"
_TOLERANCE = 1e-9


class UnknownDataset(PipelineError):
    """The aggregate store has nothing for this dataset name.

    >>> raise UnknownDataset("no dataset 'employes' in the aggregate store; known: employees")
    """

    kind = "unknown_dataset"


class StoreNotCreated(StorageUnavailable):
    """The SQLite aggregate store file does not exist yet: nothing has been published (a new
    install). Commands that list things answer with an empty list.

    >>> raise StoreNotCreated("aggregate store sqlite:////srv/pa/aggregates.db: no data has been "
    ...                       "published yet (the file does not exist)")
    """


# --------------------------------------------------------------------------- row types


@dataclass(frozen=True)
class BudgetStatus:
    """A dataset's privacy budget in its current window (all time under ``lifetime``).

    ``spent`` is committed spend; ``reserved`` is held by runs still in progress;
    ``remaining = cap - spent`` (never below 0).
    """

    dataset: str
    policy: str
    window: str | None
    window_start: datetime | None
    epsilon_cap: float
    epsilon_spent: float
    epsilon_reserved: float
    epsilon_remaining: float
    delta_cap: float
    delta_spent: float
    delta_reserved: float
    delta_remaining: float
    epsilon_per_release: float
    exhausted: bool
    #: the pinned privacy unit column; None when rows are people (or not pinned yet)
    privacy_unit: str | None = None
    #: the pinned rows per unit; None only for a dataset registered before units were
    #: pinned that no contract has been seen for since
    max_rows_per_unit: int | None = None

    @property
    def rows_are_people(self) -> bool:
        return self.max_rows_per_unit is not None and self.privacy_unit is None


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    contract_version: int
    policy: str
    window: str | None
    last_release_at: datetime | None
    releases: int
    runs: int
    rows_processed: int
    epsilon_cap: float
    epsilon_spent: float
    epsilon_remaining: float
    delta_cap: float
    delta_spent: float
    exhausted: bool
    #: pinned privacy unit and rows per unit, as on BudgetStatus
    privacy_unit: str | None = None
    max_rows_per_unit: int | None = None

    @property
    def rows_are_people(self) -> bool:
        return self.max_rows_per_unit is not None and self.privacy_unit is None


@dataclass(frozen=True)
class TermsChange:
    """One entry of a dataset's append-only log of pinned budget terms, newest first in
    ``ReadOnlyStore.terms_changes``: its first registration (``old`` None, actor
    "pipeline") and every operator change (``privacy-analytics budget set``).

    ``old``/``new`` read as the CLI prints them: numbers exactly (``50``, ``1e-06``), the
    window ``none`` under the lifetime policy, the privacy unit a column name or
    ``rows are people``. ``weakens``: the change raises a cap or changes the policy, window
    or privacy unit. ``forced``: it weakens the guarantee and was applied with ``--force``.
    """

    id: int
    dataset: str
    changed_at: datetime
    actor: str
    reason: str
    setting: str  # "epsilon_cap" | "delta_cap" | "policy" | "window" | "privacy_unit" | "max_rows_per_unit"
    old: str | None  # None at first registration
    new: str
    weakens: bool
    forced: bool


@dataclass(frozen=True)
class LedgerEntry:
    """One ledger entry. ``state`` is ``expired`` for a reservation of a crashed run."""

    id: int
    dataset: str
    run_id: str
    bucket: str
    key: str
    etag: str
    epsilon: float
    delta: float
    state: str
    window_start: datetime | None
    created_at: datetime
    committed_at: datetime | None
    cancelled_at: datetime | None


@dataclass(frozen=True)
class PublishedValueRow:
    """A value as it belongs to a release (see ``ReleaseInfo.values``)."""

    metric: str
    column: str | None
    group: dict[str, str]
    value: float
    lower: float | None
    upper: float | None
    scale: float | None


@dataclass(frozen=True)
class ReleaseInfo:
    id: int
    dataset: str
    analysis: str
    name: str
    mechanism: str
    epsilon: float | None
    delta: float | None
    contract_version: int
    bucket: str
    key: str
    etag: str
    run_id: str
    created_at: datetime
    values: tuple[PublishedValueRow, ...] = ()
    insights: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueRow:
    """A published value of the latest release of its analysis, flattened for tables/plots."""

    release_id: int
    release_name: str
    analysis: str
    metric: str
    column: str | None
    group: dict[str, str] = field(hash=False)
    value: float
    lower: float | None
    upper: float | None
    scale: float | None
    epsilon: float | None
    created_at: datetime


@dataclass(frozen=True)
class RunRow:
    """One pipeline run (counts only), newest first in ``ReadOnlyStore.runs``.

    Its counts are exact: operator information, not differentially private; never show
    them to viewers.
    """

    run_id: str
    dataset: str
    bucket: str
    key: str
    etag: str
    size: int | None
    status: str
    rows_in: int | None
    rows_out: int | None
    rows_suppressed: int | None
    columns_dropped: int | None
    columns_pseudonymized: int | None
    columns_generalized: int | None
    epsilon_spent: float
    delta_spent: float
    reason: str | None
    flow_run_url: str | None
    started_at: datetime
    finished_at: datetime | None
    updated_at: datetime
    #: cell values set to null (unreadable, outside public keys, NaN/inf); exact count
    values_nulled: int | None = None
    #: one-line, counts-only note for operators
    notes: str | None = None


def _group(text: str) -> dict[str, str]:
    data = json.loads(text) if text else {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _remaining(cap: float, spent: float) -> float:
    return max(cap - spent, 0.0)


# --------------------------------------------------------------------------- the store


class ReadOnlyStore:
    """Read-only view of the aggregate store. Never writes, never migrates.

    The constructor does not connect: a dashboard can start before the pipeline has
    created the store; queries then raise StorageUnavailable with what to do.
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
        self._path = sqlite_path(self._url)
        if self._path is not None:
            path = self._path.resolve()
            uri = f"file:{quote(str(path))}?mode=ro"

            def _connect() -> sqlite3.Connection:
                return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10.0)

            self._engine = create_engine("sqlite://", creator=_connect, poolclass=NullPool)
            install_sqlite_hooks(self._engine, immediate=False)
        else:
            self._engine = create_engine(
                self._url,
                pool_pre_ping=True,
                connect_args={"options": "-c default_transaction_read_only=on"},
            )

    @property
    def url(self) -> str:
        return safe_url(self._url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> ReadOnlyStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        if self._path is not None and not self._path.is_file():
            raise StoreNotCreated(
                f"aggregate store {self.url}: no data has been published yet (the file does "
                f"not exist); {_START_HINT}"
            )
        try:
            with storage_errors(self._url, _SCHEMA_HINT if self._path else ""), \
                    self._engine.connect() as conn, conn.begin():
                yield conn
        except sa_exc.ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != _UNDEFINED_TABLE:
                raise
            raise StorageUnavailable(
                f"aggregate store {self.url}: its tables do not exist; {_START_HINT}"
            ) from None

    # ------------------------------------------------------------------ helpers

    def _live_after(self) -> datetime:
        return self._clock() - self.reservation_timeout

    def _dataset_row(self, conn: Connection, dataset: str) -> Row[Any]:
        row = conn.execute(select(datasets).where(datasets.c.name == dataset)).one_or_none()
        if row is None:
            known = conn.execute(select(datasets.c.name).order_by(datasets.c.name)).scalars()
            names = ", ".join(known) or "none yet"
            raise UnknownDataset(
                f"no dataset '{dataset}' in the aggregate store (known: {names}); a dataset "
                "appears after its first file is processed"
            )
        return row

    def _budget(self, conn: Connection, ds: Row[Any]) -> BudgetStatus:
        now = self._clock()
        start = window_start(ds.policy, ds.window, now)
        committed = ledger.c.state == "committed"
        live_after = now - self.reservation_timeout
        live = and_(ledger.c.state == "reserved", ledger.c.created_at > live_after)
        cond = and_(ledger.c.dataset == ds.name, or_(committed, live))
        window = in_window(ledger.c.created_at, ds.policy, ds.window, now)
        if window is not None:
            cond = and_(cond, window)
        c_eps, c_delta, r_eps, r_delta = (
            float(x)
            for x in conn.execute(
                select(
                    func.coalesce(func.sum(case((committed, ledger.c.epsilon), else_=0.0)), 0.0),
                    func.coalesce(func.sum(case((committed, ledger.c.delta), else_=0.0)), 0.0),
                    func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.epsilon)), 0.0),
                    func.coalesce(func.sum(case((committed, 0.0), else_=ledger.c.delta)), 0.0),
                ).where(cond)
            ).one()
        )
        eps_left = _remaining(ds.epsilon_cap, c_eps)
        available = ds.epsilon_cap * (1 + _TOLERANCE) - c_eps - r_eps
        return BudgetStatus(
            dataset=ds.name,
            policy=ds.policy,
            window=ds.window,
            window_start=start,
            epsilon_cap=ds.epsilon_cap,
            epsilon_spent=c_eps,
            epsilon_reserved=r_eps,
            epsilon_remaining=eps_left,
            delta_cap=ds.delta_cap,
            delta_spent=c_delta,
            delta_reserved=r_delta,
            delta_remaining=_remaining(ds.delta_cap, c_delta),
            epsilon_per_release=ds.epsilon_per_release,
            exhausted=available < ds.epsilon_per_release,
            privacy_unit=ds.privacy_unit if ds.max_rows_per_unit is not None else None,
            max_rows_per_unit=ds.max_rows_per_unit,
        )

    # ------------------------------------------------------------------ public queries

    def datasets(self) -> list[DatasetSummary]:
        """Every dataset with its budget, release and run counts (by name)."""
        rel = (
            select(
                releases.c.dataset,
                func.max(releases.c.created_at).label("last"),
                func.count().label("n"),
            )
            .group_by(releases.c.dataset)
            .subquery()
        )
        run = (
            select(
                runs.c.dataset,
                func.count().label("n"),
                func.coalesce(
                    func.sum(case((runs.c.status == "completed", runs.c.rows_in), else_=0)), 0
                ).label("rows"),
            )
            .group_by(runs.c.dataset)
            .subquery()
        )
        out: list[DatasetSummary] = []
        with self._read() as conn:
            rows = conn.execute(
                select(datasets, rel.c.last, rel.c.n.label("n_rel"), run.c.n.label("n_run"),
                       run.c.rows)
                .outerjoin(rel, rel.c.dataset == datasets.c.name)
                .outerjoin(run, run.c.dataset == datasets.c.name)
                .order_by(datasets.c.name)
            ).all()
            for row in rows:
                b = self._budget(conn, row)
                out.append(
                    DatasetSummary(
                        name=row.name,
                        contract_version=row.contract_version,
                        policy=row.policy,
                        window=row.window,
                        last_release_at=row.last,
                        releases=int(row.n_rel or 0),
                        runs=int(row.n_run or 0),
                        rows_processed=int(row.rows or 0),
                        epsilon_cap=b.epsilon_cap,
                        epsilon_spent=b.epsilon_spent,
                        epsilon_remaining=b.epsilon_remaining,
                        delta_cap=b.delta_cap,
                        delta_spent=b.delta_spent,
                        exhausted=b.exhausted,
                        privacy_unit=b.privacy_unit,
                        max_rows_per_unit=b.max_rows_per_unit,
                    )
                )
        return out

    def budget(self, dataset: str) -> BudgetStatus:
        with self._read() as conn:
            return self._budget(conn, self._dataset_row(conn, dataset))

    def ledger(self, dataset: str, limit: int = 200) -> list[LedgerEntry]:
        """Ledger entries of ``dataset``, newest first."""
        live_after = self._live_after()
        with self._read() as conn:
            self._dataset_row(conn, dataset)
            rows = conn.execute(
                select(ledger)
                .where(ledger.c.dataset == dataset)
                .order_by(ledger.c.id.desc())
                .limit(limit)
            ).all()
        return [
            LedgerEntry(
                id=r.id,
                dataset=r.dataset,
                run_id=r.run_id,
                bucket=r.bucket,
                key=r.key,
                etag=r.etag,
                epsilon=r.epsilon,
                delta=r.delta,
                state="expired"
                if r.state == "reserved" and r.created_at <= live_after
                else r.state,
                window_start=r.window_start,
                created_at=r.created_at,
                committed_at=r.committed_at,
                cancelled_at=r.cancelled_at,
            )
            for r in rows
        ]

    def releases(self, dataset: str, limit: int = 100) -> list[ReleaseInfo]:
        """Releases of ``dataset``, newest first, each with its values and insights."""
        with self._read() as conn:
            self._dataset_row(conn, dataset)
            rel_rows = conn.execute(
                select(releases)
                .where(releases.c.dataset == dataset)
                .order_by(releases.c.id.desc())
                .limit(limit)
            ).all()
            ids = [r.id for r in rel_rows]
            values = self._values_of(conn, ids)
            texts = self._insights_of(conn, ids)
        return [
            ReleaseInfo(
                id=r.id,
                dataset=r.dataset,
                analysis=r.analysis,
                name=r.name,
                mechanism=r.mechanism,
                epsilon=r.epsilon,
                delta=r.delta,
                contract_version=r.contract_version,
                bucket=r.bucket,
                key=r.key,
                etag=r.etag,
                run_id=r.run_id,
                created_at=r.created_at,
                values=tuple(values.get(r.id, ())),
                insights=tuple(texts.get(r.id, ())),
            )
            for r in rel_rows
        ]

    @staticmethod
    def _values_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[PublishedValueRow]]:
        out: dict[int, list[PublishedValueRow]] = {}
        if not ids:
            return out
        for v in conn.execute(
            select(published_values)
            .where(published_values.c.release_id.in_(ids))
            .order_by(published_values.c.id)
        ):
            out.setdefault(v.release_id, []).append(
                PublishedValueRow(
                    metric=v.metric,
                    column=v.column,
                    group=_group(v.group_json),
                    value=v.value,
                    lower=v.lower,
                    upper=v.upper,
                    scale=v.scale,
                )
            )
        return out

    @staticmethod
    def _insights_of(conn: Connection, ids: Sequence[int]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        if not ids:
            return out
        for row in conn.execute(
            select(insights.c.release_id, insights.c.text)
            .where(insights.c.release_id.in_(ids))
            .order_by(insights.c.release_id, insights.c.position)
        ):
            out.setdefault(row.release_id, []).append(row.text)
        return out

    def latest_values(self, dataset: str) -> list[ValueRow]:
        """The values of the latest release of each analysis name of ``dataset``."""
        latest = (
            select(func.max(releases.c.id))
            .where(releases.c.dataset == dataset)
            .group_by(releases.c.name)
        )
        with self._read() as conn:
            self._dataset_row(conn, dataset)
            rows = conn.execute(
                select(
                    published_values,
                    releases.c.name.label("release_name"),
                    releases.c.analysis,
                    releases.c.epsilon,
                    releases.c.created_at,
                )
                .join(releases, releases.c.id == published_values.c.release_id)
                .where(releases.c.id.in_(latest))
                .order_by(releases.c.name, published_values.c.id)
            ).all()
        return [
            ValueRow(
                release_id=r.release_id,
                release_name=r.release_name,
                analysis=r.analysis,
                metric=r.metric,
                column=r.column,
                group=_group(r.group_json),
                value=r.value,
                lower=r.lower,
                upper=r.upper,
                scale=r.scale,
                epsilon=r.epsilon,
                created_at=r.created_at,
            )
            for r in rows
        ]

    def insights(self, dataset: str, limit: int = 20) -> list[str]:
        """Insight sentences of ``dataset``, latest release first."""
        with self._read() as conn:
            self._dataset_row(conn, dataset)
            return list(
                conn.execute(
                    select(insights.c.text)
                    .join(releases, releases.c.id == insights.c.release_id)
                    .where(releases.c.dataset == dataset)
                    .order_by(releases.c.id.desc(), insights.c.position)
                    .limit(limit)
                ).scalars()
            )

    def runs(self, limit: int = 50, dataset: str | None = None) -> list[RunRow]:
        """Recent pipeline runs, newest first (any dataset name, known or not)."""
        query = select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
        if dataset is not None:
            query = query.where(runs.c.dataset == dataset)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [RunRow(**r._asdict()) for r in rows]

    def terms_changes(self, dataset: str | None = None, limit: int = 200) -> list[TermsChange]:
        """Entries of the pinned budget terms log, newest first (every dataset, or one).

        Raises UnknownDataset for a dataset name the store does not know.
        """
        query = select(terms_changes).order_by(terms_changes.c.id.desc()).limit(limit)
        with self._read() as conn:
            if dataset is not None:
                self._dataset_row(conn, dataset)
                query = query.where(terms_changes.c.dataset == dataset)
            rows = conn.execute(query).all()
        return [
            TermsChange(
                id=r.id,
                dataset=r.dataset,
                changed_at=r.changed_at,
                actor=r.actor,
                reason=r.reason,
                setting=r.setting,
                old=r.old_value,
                new=r.new_value,
                weakens=bool(r.weakens),
                forced=bool(r.forced),
            )
            for r in rows
        ]

    def change_marker(self) -> tuple[int, int, int, int, str, int]:
        """A cheap value that changes whenever anything is published, reserved, cancelled,
        a run is recorded or budget terms change; the dashboard polls it and refreshes when
        it differs."""
        with self._read() as conn:
            row = conn.execute(
                select(
                    select(func.coalesce(func.max(releases.c.id), 0)).scalar_subquery(),
                    select(func.coalesce(func.max(ledger.c.id), 0)).scalar_subquery(),
                    select(func.count())
                    .select_from(ledger)
                    .where(ledger.c.state != "reserved")
                    .scalar_subquery(),
                    select(func.count()).select_from(runs).scalar_subquery(),
                    select(func.max(runs.c.updated_at)).scalar_subquery(),
                    select(func.coalesce(func.max(terms_changes.c.id), 0)).scalar_subquery(),
                )
            ).one()
        last = row[4]
        return (int(row[0]), int(row[1]), int(row[2]), int(row[3]),
                "" if last is None else str(last), int(row[5]))
