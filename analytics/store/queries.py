"""Read-only queries on the aggregate store: with its row types (``analytics.store.rows``),
all the dashboard imports of it.

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, Select, Table, case, func, select
from sqlalchemy import exc as sa_exc

from analytics.store._db import (
    DEFAULT_RESERVATION_TIMEOUT,
    StoreHandle,
    read_only_engine,
    sqlite_path,
    storage_errors,
)
from analytics.store.errors import StoreNotCreated, UnknownDataset
from analytics.store.records import DATASET_RELEASE_PREFIX, utcnow
from analytics.store.rows import (
    BudgetStatus,
    DatasetSummary,
    LedgerEntry,
    PublishedValueRow,
    ReleaseInfo,
    ReleaseSetInfo,
    RunRow,
    TermsChange,
    ValueRow,
    from_columns,
)
from analytics.store.schema import (
    dataset_releases,
    datasets,
    insights,
    ledger,
    published_values,
    releases,
    runs,
    terms_changes,
)
from analytics.store.spend import (
    cap_of,
    exhausted,
    load_spend,
    per_release_of,
    releases_remaining,
    window_start,
    zcdp_total,
)
from privacy.budget import ZCDPLoss
from privacy.errors import StorageUnavailable

__all__ = ["ReadOnlyStore"]

_START_HINT = (
    "start the pipeline ('privacy-analytics up'), which creates and migrates the store, "
    "and drop a file into landing/<dataset>/"
)
_SCHEMA_HINT = "if nothing has been published yet, " + _START_HINT
_UNDEFINED_TABLE = "42P01"  # PostgreSQL: relation does not exist

T = TypeVar("T")


def _group(text: str) -> dict[str, str]:
    data = json.loads(text) if text else {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _remaining(cap: float, spent: float) -> float:
    return max(cap - spent, 0.0)


def _shown_state(state: str, created_at: datetime, live_after: datetime) -> str:
    """A reservation older than the timeout belongs to a crashed run: it shows as expired."""
    return "expired" if state == "reserved" and created_at <= live_after else state


def _newest(table: Table, limit: int, dataset: str | None = None) -> Select[Any]:
    """The ``limit`` latest entries of ``table`` (by id), of every dataset or of one."""
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    return query if dataset is None else query.where(table.c.dataset == dataset)


# --------------------------------------------------------------------------- the store


class ReadOnlyStore(StoreHandle):
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
        super().__init__(url, reservation_timeout=reservation_timeout, clock=clock)
        self._path = sqlite_path(self._url)
        self._engine = read_only_engine(self._url, self._path)

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

    @contextmanager
    def _read_dataset(self, dataset: str) -> Iterator[Connection]:
        """``_read``, once ``dataset`` is known to exist (else UnknownDataset)."""
        with self._read() as conn:
            self._dataset_row(conn, dataset)
            yield conn

    # ------------------------------------------------------------------ helpers

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
        spend = load_spend(conn, ds, now=now, live_after=self._live_after(now))
        per_release = per_release_of(ds)
        cap = cap_of(ds)
        if isinstance(per_release, ZCDPLoss):
            # every ε as OpenDP converts the ρ spent (at the δ the thresholds leave)
            committed = spend.converted(ds.delta_cap, committed_only=True)
            held = spend.converted(ds.delta_cap)
            eps_spent, eps_reserved = committed, max(held - committed, 0.0)
            eps_next = max(zcdp_total(spend, per_release, cap) - held, 0.0)
            zcdp: dict[str, Any] = {
                "rho_spent": spend.committed_rho, "rho_reserved": spend.reserved_rho,
                "rho_per_release": per_release.rho,
            }
        else:
            eps_spent, eps_reserved = spend.committed_epsilon, spend.reserved_epsilon
            eps_next, zcdp = ds.epsilon_per_release, {}
        left = releases_remaining(spend, cap, per_release)
        rate, runs_out = self._release_rate(conn, ds, now, left)
        return BudgetStatus(
            dataset=ds.name,
            policy=ds.policy,
            window=ds.window,
            window_start=window_start(ds.policy, ds.window, now),
            epsilon_cap=ds.epsilon_cap,
            epsilon_spent=eps_spent,
            epsilon_reserved=eps_reserved,
            epsilon_remaining=_remaining(ds.epsilon_cap, eps_spent),
            delta_cap=ds.delta_cap,
            delta_spent=spend.committed_delta,
            delta_reserved=spend.reserved_delta,
            delta_remaining=_remaining(ds.delta_cap, spend.committed_delta),
            epsilon_per_release=eps_next,
            exhausted=exhausted(spend, cap, per_release),
            privacy_unit=ds.privacy_unit if ds.max_rows_per_unit is not None else None,
            max_rows_per_unit=ds.max_rows_per_unit,
            delta_per_release=per_release.delta,
            accounting=ds.accounting,
            releases_remaining=left,
            releases_per_day=rate,
            runs_out_on=runs_out,
            **zcdp,
        )

    @staticmethod
    def _release_rate(
        conn: Connection, ds: Row[Any], now: datetime, left: int
    ) -> tuple[float | None, date | None]:
        """Committed releases per day since the first, and the day the ``left`` releases
        still paid for run out at that rate (None, None: fewer than two releases, or a
        budget that resets each window)."""
        if ds.policy != "lifetime":
            return None, None
        n, first = conn.execute(
            select(func.count(), func.min(ledger.c.created_at)).where(
                ledger.c.dataset == ds.name, ledger.c.state == "committed"
            )
        ).one()
        if n < 2 or first is None:
            return None, None
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
        days = max((now - first).total_seconds() / 86400, 1.0)
        rate = n / days
        return rate, (now + timedelta(days=left / rate)).date()

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
                # rows of the files validated and masked (not those of dataset releases,
                # which read the same files again)
                func.coalesce(func.sum(case(
                    (runs.c.status.in_(("completed", "masked"))
                     & ~runs.c.key.startswith(DATASET_RELEASE_PREFIX), runs.c.rows_in),
                    else_=0)), 0).label("rows"),
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
                # the budget's figures as BudgetStatus has them (policy and window too)
                budget = asdict(self._budget(conn, row))
                out.append(
                    from_columns(
                        DatasetSummary, budget, name=row.name,
                        contract_version=row.contract_version, last_release_at=row.last,
                        releases=int(row.n_rel or 0), runs=int(row.n_run or 0),
                        rows_processed=int(row.rows or 0),
                    )
                )
        return out

    def budget(self, dataset: str) -> BudgetStatus:
        with self._read() as conn:
            return self._budget(conn, self._dataset_row(conn, dataset))

    def ledger(self, dataset: str, limit: int = 200) -> list[LedgerEntry]:
        """Ledger entries of ``dataset``, newest first."""
        live_after = self._live_after(self._clock())
        with self._read_dataset(dataset) as conn:
            rows = conn.execute(_newest(ledger, limit, dataset)).all()
        return [
            from_columns(LedgerEntry, r._mapping,
                         state=_shown_state(r.state, r.created_at, live_after))
            for r in rows
        ]

    def releases(self, dataset: str, limit: int = 100) -> list[ReleaseInfo]:
        """Releases of ``dataset``, newest first, each with its values and insights."""
        with self._read_dataset(dataset) as conn:
            rel_rows = conn.execute(_newest(releases, limit, dataset)).all()
            ids = [r.id for r in rel_rows]
            values = self._per_release(
                conn, published_values, ids, [published_values.c.id],
                lambda v: from_columns(PublishedValueRow, v._mapping, group=_group(v.group_json)),
            )
            texts = self._per_release(
                conn, insights, ids, [insights.c.release_id, insights.c.position],
                lambda row: str(row.text),
            )
        return [
            from_columns(ReleaseInfo, r._mapping, values=tuple(values.get(r.id, ())),
                         insights=tuple(texts.get(r.id, ())))
            for r in rel_rows
        ]

    @staticmethod
    def _per_release(
        conn: Connection, table: Table, ids: Sequence[int], order: Sequence[Any],
        item: Callable[[Row[Any]], T],
    ) -> dict[int, list[T]]:
        """``item`` of each row of ``table`` that belongs to one of the releases ``ids``, by
        release id, in ``order``."""
        out: dict[int, list[T]] = {}
        if not ids:
            return out
        for row in conn.execute(
            select(table).where(table.c.release_id.in_(ids)).order_by(*order)
        ):
            out.setdefault(row.release_id, []).append(item(row))
        return out

    def release_sets(self, dataset: str, limit: int = 200) -> list[ReleaseSetInfo]:
        """The dataset's published release sets (committed ledger entries), newest first:
        dataset releases and files' own releases."""
        query = (
            select(ledger.c.id.label("ledger_id"), ledger.c.key, ledger.c.epsilon,
                   ledger.c.delta, ledger.c.committed_at, dataset_releases.c.files,
                   dataset_releases.c.files_mode, dataset_releases.c.max_rows_per_unit,
                   dataset_releases.c.since)
            .outerjoin(dataset_releases, dataset_releases.c.ledger_id == ledger.c.id)
            .where(ledger.c.dataset == dataset, ledger.c.state == "committed")
            .order_by(ledger.c.id.desc())
            .limit(limit)
        )
        with self._read_dataset(dataset) as conn:
            rows = conn.execute(query).all()
        return [
            from_columns(ReleaseSetInfo, r._mapping, created_at=r.committed_at,
                         kind="file" if r.files is None else "dataset")
            for r in rows
        ]

    def default_release_set(self, dataset: str) -> int | None:
        """The release set a dataset page shows first: the latest dataset release, or None
        when the dataset has none (then each analysis's latest release is shown)."""
        with self._read_dataset(dataset) as conn:
            return conn.execute(
                select(func.max(dataset_releases.c.ledger_id))
                .where(dataset_releases.c.dataset == dataset)
            ).scalar_one_or_none()

    def latest_values(self, dataset: str, ledger_id: int | None = None) -> list[ValueRow]:
        """The values of the latest release of each analysis name of ``dataset``, or with
        ``ledger_id`` those of one release set (see ``release_sets``)."""
        with self._read_dataset(dataset) as conn:
            return self._values(conn, dataset, None if ledger_id is None else [ledger_id])

    def values_of(self, dataset: str, ledger_ids: Sequence[int],
                  analysis: str | None = None) -> list[ValueRow]:
        """The values of the release sets ``ledger_ids`` of ``dataset`` (only those of
        ``analysis`` releases, if given), each with its ``ledger_id``: a history."""
        with self._read_dataset(dataset) as conn:
            return self._values(conn, dataset, list(ledger_ids), analysis)

    @staticmethod
    def _values(conn: Connection, dataset: str, ledger_ids: list[int] | None,
                analysis: str | None = None) -> list[ValueRow]:
        chosen: list[Any] = [releases.c.dataset == dataset]
        if ledger_ids is None:
            chosen.append(releases.c.id.in_(
                select(func.max(releases.c.id))
                .where(releases.c.dataset == dataset)
                .group_by(releases.c.name)
            ))
        else:
            chosen.append(releases.c.ledger_id.in_(ledger_ids))
        if analysis is not None:
            chosen.append(releases.c.analysis == analysis)
        rows = conn.execute(
            select(
                published_values,
                releases.c.name.label("release_name"),
                releases.c.analysis,
                releases.c.epsilon,
                releases.c.created_at,
                releases.c.ledger_id,
            )
            .join(releases, releases.c.id == published_values.c.release_id)
            .where(*chosen)
            .order_by(releases.c.name, releases.c.ledger_id, published_values.c.id)
        ).all()
        return [from_columns(ValueRow, r._mapping, group=_group(r.group_json)) for r in rows]

    def insights(self, dataset: str, limit: int = 20) -> list[str]:
        """Insight sentences of ``dataset``, latest release first."""
        with self._read_dataset(dataset) as conn:
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
        return [from_columns(RunRow, r._mapping) for r in rows]

    def terms_changes(self, dataset: str | None = None, limit: int = 200) -> list[TermsChange]:
        """Entries of the pinned budget terms log, newest first (every dataset, or one).

        Raises UnknownDataset for a dataset name the store does not know.
        """
        with self._read() as conn:
            if dataset is not None:
                self._dataset_row(conn, dataset)
            rows = conn.execute(_newest(terms_changes, limit, dataset)).all()
        return [TermsChange.of_columns(r._mapping) for r in rows]

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
