"""Calls that move the pipeline and never count absence: businesses.outcome_stages (which stage
a call's outcome moves its lead to, per business; empty: the defaults) and
interactions.active_at (her last activity on a call being logged, so its talk ends at most an
idle time after it), and an index of each person's calls not wrapped up (her "mine" list)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outcome_stages", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_interactions_user_drafts",
            ["user_id"],
            unique=False,
            sqlite_where=sa.text("status = 'draft'"),
            postgresql_where=sa.text("status = 'draft'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_user_drafts")
        batch_op.drop_column("active_at")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("outcome_stages")
