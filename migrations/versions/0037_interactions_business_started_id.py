"""interactions: ix_interactions_business_started gains id (the portal's page, newest first)

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-08 02:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_interactions_business_started_id",
        "interactions",
        ["business_id", "started_at", "id"],
        unique=False,
    )
    op.drop_index("ix_interactions_business_started", table_name="interactions")


def downgrade() -> None:
    op.create_index(
        "ix_interactions_business_started",
        "interactions",
        ["business_id", "started_at"],
        unique=False,
    )
    op.drop_index("ix_interactions_business_started_id", table_name="interactions")
