"""approval_step: steps of a replaced version read 'superseded' (issue 10)

Before, a new version voided only the open steps of the old one; its approvals kept reading
`approved`. Every step whose version is not its request's current version becomes
`superseded` (the decision, comment and time stay in their columns). The state column is
VARCHAR(16) without a constraint, so no schema change is needed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 02:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_steps = sa.table('approval_step', sa.column('request_id', sa.Integer),
                  sa.column('version', sa.String), sa.column('state', sa.String))
_requests = sa.table('budget_request', sa.column('id', sa.Integer),
                     sa.column('version', sa.String))


def upgrade() -> None:
    current = (sa.select(_requests.c.version).where(_requests.c.id == _steps.c.request_id)
               .scalar_subquery())
    op.execute(_steps.update().where(_steps.c.version != current)
               .values(state='superseded'))


def downgrade() -> None:
    # The earlier code knows no 'superseded'; 'void' is the closest state it reads as outdated.
    op.execute(_steps.update().where(_steps.c.state == 'superseded').values(state='void'))
