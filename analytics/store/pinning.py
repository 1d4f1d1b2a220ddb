"""Pinned budget terms in the aggregate store (invariant 9): registering a dataset, and the
operator's change of its terms. Each function runs inside the writer's transaction.

The first registration of a dataset fixes its ε cap, δ cap, policy, window, privacy unit
and rows per unit, and logs them in ``terms_changes``. A contract that differs is refused
with :class:`BudgetTermsChanged` (by ``register_dataset`` and by ``reserve``), naming every
change and the command that accepts it; only ``set_terms`` (``privacy-analytics budget
set``) changes them, under the dataset's row lock, appending one entry per change. The
contract version and ε and δ per release follow the contract; they are not pinned.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, insert, select, update

from analytics.store._db import finite_number
from analytics.store._sql import insert_ignore
from analytics.store.rows import TermsChange
from analytics.store.schema import datasets, ledger, terms_changes
from analytics.store.spend import WINDOWS
from analytics.store.terms import (
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
from privacy.errors import BudgetTermsChanged, ContractError, PipelineError, TermsChangeRefused

if TYPE_CHECKING:
    from privacy.contract import Contract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TermsRequest:
    """The settings an operator asks ``set_terms`` to change (None: leave as it is)."""

    epsilon_cap: float | None = None
    delta_cap: float | None = None
    policy: str | None = None
    window: str | None = None
    privacy_unit: str | None = None
    rows_are_people: bool = False
    max_rows_per_unit: int | None = None

    @property
    def empty(self) -> bool:
        settings = (self.epsilon_cap, self.delta_cap, self.policy, self.window,
                    self.privacy_unit, self.max_rows_per_unit)
        return not self.rows_are_people and all(v is None for v in settings)


def lock_dataset(conn: Connection, dataset: str) -> Row[Any]:
    """The ``datasets`` row of ``dataset``, locked for the rest of the transaction."""
    row = conn.execute(
        select(datasets).where(datasets.c.name == dataset).with_for_update()
    ).one_or_none()
    if row is None:
        raise PipelineError(
            f"dataset '{dataset}' is not registered in the aggregate store; "
            "register its contract first"
        )
    return row


def _switch_accounting(conn: Connection, row: Row[Any], accounting: str) -> None:
    """A dataset's accounting changes only while its ledger is empty: ρ and ε do not add
    up together (a zCDP entry has no pure-ε bound), so a dataset that has spent keeps it."""
    spent = conn.execute(
        select(ledger.c.id).where(ledger.c.dataset == row.name).limit(1)
    ).first()
    if spent is not None:
        raise ContractError(
            f"dataset '{row.name}' is accounted under '{row.accounting}' and has spent "
            f"budget; its contract now says accounting '{accounting}'. The accounting of a "
            "dataset that has spent cannot change (its ledger adds up one kind of loss): "
            f"set budget.accounting back to '{row.accounting}', or release under a new "
            "dataset name"
        )
    conn.execute(
        update(datasets).where(datasets.c.name == row.name).values(accounting=accounting)
    )


def register(conn: Connection, contract: Contract, now: datetime) -> Row[Any]:
    """Register ``contract``'s dataset, or check it against the pinned terms (and lock it).

    First registration pins the terms and logs them. Later, a contract whose terms differ
    raises BudgetTermsChanged (the transaction rolls back: nothing changes); a dataset
    registered before units were pinned gets its unit and rows pinned from this contract.
    The contract version and ε and δ per release follow the contract.
    """
    name = contract.dataset
    want = Terms.of_contract(contract)
    b = contract.budget
    per_release = {
        "epsilon_per_release": float(b.epsilon_per_release),
        "delta_per_release": float(b.release_delta),
        "rho_per_release": float(b.rho_per_release) if b.rho_per_release is not None else None,
    }
    first = insert_ignore(
        conn,
        datasets,
        {
            "name": name,
            "contract_version": contract.version,
            "created_at": now,
            "updated_at": now,
            **per_release,
            **want.columns(),
            "accounting": b.accounting,
        },
    )
    row = lock_dataset(conn, name)
    if not first and row.accounting != b.accounting:
        _switch_accounting(conn, row, b.accounting)
        row = lock_dataset(conn, name)
    if first:
        log_changes(conn, name, initial_changes(want), actor=PIPELINE_ACTOR,
                    reason=FIRST_REGISTRATION, force=False, now=now)
        return row
    pinned = Terms.of_row(row._mapping)
    changes = diff_terms(pinned, want)
    refused = [c for c in changes if c.old is not None]
    if refused:
        raise BudgetTermsChanged(changed_message(name, refused, want), changes=refused)
    if b.accounting == "pure" and b.epsilon_per_release > pinned.epsilon_cap:
        raise ContractError(
            f"dataset '{name}': the contract's epsilon_per_release "
            f"{format_number(b.epsilon_per_release)} exceeds the pinned "
            f"epsilon_cap {format_number(pinned.epsilon_cap)}; nothing was released. Lower "
            "budget.epsilon_per_release in the contract to at most the cap"
        )
    values: dict[str, Any] = {k: v for k, v in per_release.items() if row._mapping[k] != v}
    pins = [c for c in changes if c.old is None]
    if pins:
        values.update(privacy_unit=want.privacy_unit, max_rows_per_unit=want.max_rows_per_unit)
        log_changes(conn, name, pins, actor=PIPELINE_ACTOR, reason=LEGACY_PIN, force=False,
                    now=now)
        log.info(
            "dataset '%s': privacy unit and rows per unit pinned from contract version %s",
            name,
            contract.version,
        )
    if row.contract_version != contract.version:
        values["contract_version"] = contract.version
    if not values:
        return row
    conn.execute(
        update(datasets).where(datasets.c.name == name).values(updated_at=now, **values)
    )
    return lock_dataset(conn, name)


def log_changes(
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
        entry = {"dataset": dataset, "changed_at": now, "actor": actor, "reason": reason,
                 "setting": c.setting, "old_value": c.old, "new_value": c.new,
                 "weakens": c.weakens, "forced": force and c.weakens}
        entry_id = conn.execute(
            insert(terms_changes).values(**entry).returning(terms_changes.c.id)
        ).scalar_one()
        out.append(TermsChange.of_columns({**entry, "id": int(entry_id)}))
    return out


def check_request(dataset: str, request: TermsRequest, *, reason: str, actor: str) -> tuple[str, str]:
    """Refuse a request without a reason, actor or setting; the reason and actor on one line."""
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
    if request.empty:
        raise TermsChangeRefused(
            f"dataset '{dataset}': nothing to change: give at least one of --epsilon-cap, "
            "--delta-cap, --policy, --window, --privacy-unit, --rows-are-people, "
            "--max-rows-per-unit"
        )
    return reason, actor


def change_terms(
    conn: Connection,
    dataset: str,
    request: TermsRequest,
    *,
    reason: str,
    actor: str,
    force: bool,
    now: datetime,
) -> list[TermsChange]:
    """Apply a checked request under the dataset's row lock; the entries it appended."""
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
    new = _requested_terms(dataset, old, request)
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
        update(datasets).where(datasets.c.name == dataset).values(updated_at=now, **new.columns())
    )
    return log_changes(conn, dataset, changes, actor=actor, reason=reason, force=force, now=now)


def _refuse(dataset: str, problem: str) -> TermsChangeRefused:
    return TermsChangeRefused(f"dataset '{dataset}': {problem}; nothing was changed")


def _requested_terms(dataset: str, old: Terms, request: TermsRequest) -> Terms:
    """The terms ``request`` asks for: ``old`` with the given settings replaced."""
    epsilon_cap, delta_cap = request.epsilon_cap, request.delta_cap
    window, privacy_unit = request.window, request.privacy_unit
    rows_are_people, max_rows_per_unit = request.rows_are_people, request.max_rows_per_unit
    if epsilon_cap is not None and (not finite_number(epsilon_cap) or epsilon_cap <= 0):
        raise _refuse(dataset, "the ε cap must be a finite number above 0")
    if delta_cap is not None and (not finite_number(delta_cap) or not 0 <= delta_cap < 1):
        raise _refuse(dataset, "the δ cap must be a finite number in [0, 1)")
    new_policy = old.policy if request.policy is None else request.policy
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
