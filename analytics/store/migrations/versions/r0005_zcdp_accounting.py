"""zCDP accounting: a dataset's accounting ("pure" ε or "zcdp"), pinned at its first
registration, and ρ per release (from the contract, like epsilon_per_release); ρ per ledger
entry and per release. Existing datasets are pure-ε; their entries' ρ stays NULL.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-01 19:40:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'r0005'
down_revision: str | Sequence[str] | None = 'r0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.add_column('datasets', sa.Column('accounting', sa.String(length=8), nullable=False,
                                        server_default='pure'))
    op.add_column('datasets', sa.Column('rho_per_release', sa.Float(), nullable=True))
    op.add_column('ledger', sa.Column('rho', sa.Float(), nullable=True))
    op.add_column('releases', sa.Column('rho', sa.Float(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    # SQLite (3.35+) drops a plain column in place, without copying the table
    op.drop_column('releases', 'rho')
    op.drop_column('ledger', 'rho')
    op.drop_column('datasets', 'rho_per_release')
    op.drop_column('datasets', 'accounting')
