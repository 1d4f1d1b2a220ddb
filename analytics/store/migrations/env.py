"""Alembic environment of the aggregate store.

Migrations run programmatically: ``AggregateStore(url)`` opens a write transaction (SQLite:
BEGIN IMMEDIATE; PostgreSQL: an advisory lock), puts its connection in
``config.attributes["connection"]`` and upgrades to head, so concurrent first opens
migrate once. To write a new revision against a scratch database::

    from analytics.store import make_revision
    make_revision("sqlite:////tmp/scratch.db", "add a thing", rev_id="r0004")
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from analytics.store.schema import UTCDateTime, metadata
from privacy.errors import PipelineError

connection = context.config.attributes.get("connection")
if connection is None:
    raise PipelineError(
        "aggregate store migrations run through analytics.store.AggregateStore(url), "
        "which passes its connection; offline (SQL script) mode is not supported"
    )


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render the store's own column types as plain SQLAlchemy types in revisions."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    render_item=_render_item,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copy-and-move
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
