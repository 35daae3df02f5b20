"""Repeat contacts: businesses.repeat_window_days (a message or call joins its contact's open
lead opened within it) and leads.attempts (how many times the contact reached out on a lead)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("repeat_window_days", sa.Integer(), server_default="7", nullable=False)
        )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("attempts")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("repeat_window_days")
