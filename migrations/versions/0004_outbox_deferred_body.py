"""outbox: mails whose bodies are rendered by the delivery worker, from a stored context

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 16:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # JSON text {"template", "language", "context"}; NULL for mails rendered at enqueue.
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deferred_body', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('deferred_body')
