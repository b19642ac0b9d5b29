"""outbox: a random tag per mail for its VERP return path, so only our own bounces are believed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 16 lower-case base32 characters; NULL for rows enqueued before this revision, whose
    # bounces (to `bounce+<id>@`) are then recorded and change nothing.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounce_tag', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('bounce_tag')
