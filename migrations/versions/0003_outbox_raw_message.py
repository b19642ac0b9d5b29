"""outbox: the wire bytes of each message, built once at enqueue

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 15:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: rows enqueued before this revision have no stored bytes; delivery builds
    # those at send time.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw_message', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('raw_message')
