"""δ per release on datasets: the δ the next file of a dataset spends, recorded from its
contract at each registration like epsilon_per_release (not pinned), so the read-only API
tells a spent δ cap as the writer does.

Datasets registered before this revision get the δ their contract's default gives (the δ
cap shared evenly by the releases the ε cap allows) until their next contract records its
own. An ADD COLUMN only: SQLite never copies the datasets table.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-10 09:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'r0003'
down_revision: str | Sequence[str] | None = 'r0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('datasets', sa.Column('delta_per_release', sa.Float(), nullable=True))

    datasets = sa.table(
        'datasets', sa.column('name', sa.String), sa.column('epsilon_cap', sa.Float),
        sa.column('delta_cap', sa.Float), sa.column('epsilon_per_release', sa.Float),
        sa.column('delta_per_release', sa.Float),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(datasets).order_by(datasets.c.name)).all():
        releases = max(int(row.epsilon_cap / row.epsilon_per_release + 1e-9), 1)
        bind.execute(
            sa.update(datasets)
            .where(datasets.c.name == row.name)
            .values(delta_per_release=row.delta_cap / releases)
        )


def downgrade() -> None:
    """Downgrade schema."""
    # SQLite (3.35+) drops a plain column in place, without copying the table
    op.drop_column('datasets', 'delta_per_release')
