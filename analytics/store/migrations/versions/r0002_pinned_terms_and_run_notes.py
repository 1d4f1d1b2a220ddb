"""Pinned budget terms and run notes: the privacy unit and rows per unit on datasets, the
append-only terms_changes log (UPDATE and DELETE refused by triggers), and values_nulled /
notes on runs.

Datasets registered before this revision keep their caps, policy and window as pinned
terms; the log starts with one entry per such setting (actor "migration r0002"). Their
privacy unit and rows per unit stay NULL until the next contract pins them.

Every change here is an ADD COLUMN or a new table: SQLite never copies the datasets table
(which the ledger references) inside the migration's transaction. Note for later
revisions: a batch (copy-and-move) alter of terms_changes on SQLite drops its triggers;
create them again.

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-03 09:00:00.000000

"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'r0002'
down_revision: str | Sequence[str] | None = 'r0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_APPEND_ONLY = "terms_changes is append-only: its entries are never updated or deleted"

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER terms_changes_no_{verb.lower()} BEFORE {verb} ON terms_changes
    BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"""
    for verb in ("UPDATE", "DELETE")
]

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION terms_changes_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{_APPEND_ONLY}' USING ERRCODE = 'integrity_constraint_violation';
END
$$"""

_PG_TRIGGERS = [
    """CREATE TRIGGER terms_changes_no_change BEFORE UPDATE OR DELETE ON terms_changes
    FOR EACH ROW EXECUTE FUNCTION terms_changes_append_only()""",
    """CREATE TRIGGER terms_changes_no_truncate BEFORE TRUNCATE ON terms_changes
    FOR EACH STATEMENT EXECUTE FUNCTION terms_changes_append_only()""",
]


def _number(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('datasets', sa.Column('privacy_unit', sa.String(length=255), nullable=True))
    op.add_column('datasets', sa.Column('max_rows_per_unit', sa.Integer(), nullable=True))
    op.add_column('runs', sa.Column('values_nulled', sa.BigInteger(), nullable=True))
    op.add_column('runs', sa.Column('notes', sa.Text(), nullable=True))
    terms_changes = op.create_table('terms_changes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dataset', sa.String(length=64), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('setting', sa.String(length=32), nullable=False),
    sa.Column('old_value', sa.Text(), nullable=True),
    sa.Column('new_value', sa.Text(), nullable=False),
    sa.Column('weakens', sa.Boolean(), nullable=False),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.CheckConstraint("setting IN ('epsilon_cap', 'delta_cap', 'policy', 'window', 'privacy_unit', 'max_rows_per_unit')", name=op.f('ck_terms_changes_setting_known')),
    sa.ForeignKeyConstraint(['dataset'], ['datasets.name'], name=op.f('fk_terms_changes_dataset_datasets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_terms_changes'))
    )
    op.create_index(op.f('ix_terms_changes_dataset_id'), 'terms_changes', ['dataset', 'id'], unique=False)

    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for ddl in _PG_TRIGGERS:
            op.execute(ddl)
    else:
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)

    # the terms existing datasets already live under start their log
    datasets = sa.table(
        'datasets', sa.column('name', sa.String), sa.column('epsilon_cap', sa.Float),
        sa.column('delta_cap', sa.Float), sa.column('policy', sa.String),
        sa.column('window', sa.String),
    )
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # the store keeps naive UTC on SQLite
    entries = []
    for row in bind.execute(sa.select(datasets).order_by(datasets.c.name)):
        values = {
            'epsilon_cap': _number(row.epsilon_cap),
            'delta_cap': _number(row.delta_cap),
            'policy': row.policy,
            'window': (row.window if row.policy == 'window' else None) or 'none',
        }
        entries += [
            {'dataset': row.name, 'changed_at': now, 'actor': 'migration r0002',
             'reason': 'terms in force when the change log began', 'setting': setting,
             'old_value': None, 'new_value': value, 'weakens': False, 'forced': False}
            for setting, value in values.items()
        ]
    if entries:
        op.bulk_insert(terms_changes, entries)


def downgrade() -> None:
    """Downgrade schema."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TABLE terms_changes")  # its triggers go with it
        op.execute("DROP FUNCTION IF EXISTS terms_changes_append_only()")
    else:
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS terms_changes_no_{verb}")
        op.drop_index(op.f('ix_terms_changes_dataset_id'), table_name='terms_changes')
        op.drop_table('terms_changes')
    # SQLite (3.35+) drops plain columns in place, without copying the tables
    op.drop_column('runs', 'notes')
    op.drop_column('runs', 'values_nulled')
    op.drop_column('datasets', 'max_rows_per_unit')
    op.drop_column('datasets', 'privacy_unit')
