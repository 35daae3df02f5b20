"""calls.declined and calls.rejected_at: a secretary's reject of a ring is its own outcome

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("declined", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("rejected_at")
        batch.drop_column("declined")
