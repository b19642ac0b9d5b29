"""auditevent.scheme: which hash an event carries ('sha256' unkeyed, 'hmac' keyed) (issue 10)

Events written before stay verifiable as they are ('sha256'); every event appended with a key
configured is 'hmac', and `audit verify` refuses an unkeyed event after a keyed one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 02:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheme', sa.String(length=8), nullable=False,
                                      server_default='sha256'))


def downgrade() -> None:
    with op.batch_alter_table('auditevent', schema=None) as batch_op:
        batch_op.drop_column('scheme')
