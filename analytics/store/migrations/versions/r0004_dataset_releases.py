"""Dataset releases: releases over a dataset as a whole (every file so far, or its latest
snapshot), one row per committed ledger entry, and the object versions each one read.

New tables only: nothing existing changes.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-01 15:00:00.000000

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = 'r0004'
down_revision: str | Sequence[str] | None = 'r0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'dataset_releases',
        sa.Column('ledger_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('dataset', sa.String(length=64), nullable=False),
        sa.Column('files_mode', sa.String(length=16), nullable=False),
        sa.Column('files', sa.Integer(), nullable=False),
        sa.Column('max_rows_per_unit', sa.Integer(), nullable=True),
        sa.Column('since', sa.Date(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("files_mode IN ('append', 'snapshot')",
                           name=op.f('ck_dataset_releases_files_mode_known')),
        sa.CheckConstraint('files >= 1', name=op.f('ck_dataset_releases_files_positive')),
        sa.ForeignKeyConstraint(['dataset'], ['datasets.name'],
                                name=op.f('fk_dataset_releases_dataset_datasets')),
        sa.ForeignKeyConstraint(['ledger_id'], ['ledger.id'],
                                name=op.f('fk_dataset_releases_ledger_id_ledger')),
        sa.PrimaryKeyConstraint('ledger_id', name=op.f('pk_dataset_releases')),
    )
    op.create_index(op.f('ix_dataset_releases_dataset_ledger_id'), 'dataset_releases',
                    ['dataset', 'ledger_id'], unique=False)
    op.create_table(
        'release_coverage',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ledger_id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=1024), nullable=False),
        sa.Column('etag', sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(['ledger_id'], ['dataset_releases.ledger_id'],
                                name=op.f('fk_release_coverage_ledger_id_dataset_releases')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_release_coverage')),
    )
    op.create_index(op.f('ix_release_coverage_ledger_id'), 'release_coverage', ['ledger_id'],
                    unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_release_coverage_ledger_id'), table_name='release_coverage')
    op.drop_table('release_coverage')
    op.drop_index(op.f('ix_dataset_releases_dataset_ledger_id'), table_name='dataset_releases')
    op.drop_table('dataset_releases')
