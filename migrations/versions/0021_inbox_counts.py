"""The inbox's counts in index order: ix_leads_open_counts (business, channel, stage, holder of
the open leads), so grouping them reads the index instead of sorting every open lead

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_open_counts",
        "leads",
        ["business_id", "channel", "stage", "claimed_by_id"],
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_open_counts", table_name="leads")
