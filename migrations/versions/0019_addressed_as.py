"""How the Hebrew interface addresses each user: users.addressed_as, "plural" (neutral, the
default), "feminine" or "masculine"

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 12:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("addressed_as", sa.String(16), server_default="plural", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_users_addressed_as"), "addressed_as IN ('plural', 'feminine', 'masculine')"
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_addressed_as"), type_="check")
        batch_op.drop_column("addressed_as")
