"""leads: ix_leads_business_created gains id (the API's page, newest first, from the index alone)

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_business_created_id", "leads", ["business_id", "created_at", "id"], unique=False
    )
    op.drop_index("ix_leads_business_created", table_name="leads")


def downgrade() -> None:
    op.create_index(
        "ix_leads_business_created", "leads", ["business_id", "created_at"], unique=False
    )
    op.drop_index("ix_leads_business_created_id", table_name="leads")
