"""notifications: 'withdrawn', for a message called off before it was sent (status widened)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW = "status IN ('queued', 'sent', 'failed', 'withdrawn')"
OLD = "status IN ('queued', 'sent', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_notifications_status"), type_="check")
        batch_op.alter_column(
            "status", existing_type=sa.String(length=8), type_=sa.String(length=16)
        )
        batch_op.create_check_constraint("status", NEW)


def downgrade() -> None:
    op.execute("UPDATE notifications SET status = 'failed' WHERE status = 'withdrawn'")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_notifications_status"), type_="check")
        batch_op.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=8)
        )
        batch_op.create_check_constraint("status", OLD)
