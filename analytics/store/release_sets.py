"""A release set on its way into the store: the checks it must pass against its
reservation, and the rows it becomes (releases, published values, insights)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, insert

from analytics.store._db import finite_number
from analytics.store.schema import canonical_group, insights, published_values, releases
from analytics.store.spend import ledger_values
from privacy.budget import Loss, PrivacyLoss, ZCDPLoss, fits
from privacy.errors import PipelineError

if TYPE_CHECKING:
    from analytics.store.records import Reservation, RunRecord
    from privacy.results import ReleaseSet


def check_loss(loss: Loss, what: str) -> None:
    """Refuse a loss that is not finite and positive, even one built around PrivacyLoss's
    (ZCDPLoss's) own checks (their constructors already refuse them)."""
    if not isinstance(loss, PrivacyLoss | ZCDPLoss):
        raise PipelineError(f"{what} must be a PrivacyLoss or ZCDPLoss, got {type(loss).__name__}")
    name = "ε" if isinstance(loss, PrivacyLoss) else "ρ"
    if not finite_number(loss.amount) or loss.amount <= 0:
        raise PipelineError(f"{what}: {name} must be finite and positive, got {loss.amount!r}")
    if not finite_number(loss.delta) or not 0 <= loss.delta < 1:
        raise PipelineError(f"{what}: δ must be finite and in [0, 1), got {loss.delta!r}")


def release_set_problem(reservation: Reservation, release_set: ReleaseSet) -> str | None:
    """Why ``release_set`` cannot be published under ``reservation`` (None if it can)."""
    if release_set.dataset != reservation.dataset:
        return (
            f"release set is for dataset '{release_set.dataset}' but the reservation is for "
            f"'{reservation.dataset}'"
        )
    try:
        check_loss(release_set.loss, "release set loss")
    except PipelineError as exc:
        return str(exc)
    if not fits(release_set.loss, reservation.loss):
        return (
            f"actual loss {release_set.loss} exceeds the reserved {reservation.loss}; "
            "reserve the full cost before releasing"
        )
    for rel in release_set.releases:
        if rel.loss is not None:
            try:
                check_loss(rel.loss, f"release '{rel.name}'")
            except PipelineError as exc:
                return str(exc)
        for v in rel.values:
            if not finite_number(v.value):
                return f"release '{rel.name}': a '{v.metric}' value is not a finite number"
            for name, x in (("lower", v.lower), ("upper", v.upper), ("scale", v.scale)):
                if x is not None and (not isinstance(x, int | float) or math.isnan(x)):
                    return f"release '{rel.name}': a '{v.metric}' {name} is not a number"
    return None


def insert_releases(
    conn: Connection,
    reservation: Reservation,
    release_set: ReleaseSet,
    run: RunRecord,
    now: datetime,
    delta_cap: float,
) -> None:
    """Insert every release of ``release_set`` with its values and insights (under zcdp
    with its ρ, and the ε that alone converts to at ``delta_cap``)."""
    for rel in release_set.releases:
        release_id = conn.execute(
            insert(releases)
            .values(
                dataset=release_set.dataset,
                ledger_id=reservation.id,
                analysis=rel.analysis,
                name=rel.name,
                mechanism=rel.mechanism,
                **(ledger_values(rel.loss, delta_cap) if rel.loss else {}),
                contract_version=release_set.contract_version,
                **reservation.obj.columns(),
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
