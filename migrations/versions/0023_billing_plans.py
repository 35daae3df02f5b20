"""billing_plans: what each business pays the agency, from a month on

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 16:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "billing_plans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("monthly_fee_agorot", sa.Integer(), nullable=False),
        sa.Column("included_calls", sa.Integer(), nullable=False),
        sa.Column("included_minutes", sa.Integer(), nullable=False),
        sa.Column("included_messages", sa.Integer(), nullable=False),
        sa.Column("call_price_agorot", sa.Integer(), nullable=False),
        sa.Column("minute_price_agorot", sa.Integer(), nullable=False),
        sa.Column("message_price_agorot", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "monthly_fee_agorot >= 0 AND included_calls >= 0 AND included_minutes >= 0"
            " AND included_messages >= 0 AND call_price_agorot >= 0"
            " AND minute_price_agorot >= 0 AND message_price_agorot >= 0",
            name=op.f("ck_billing_plans_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_billing_plans_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_billing_plans_changed_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_plans")),
        sa.UniqueConstraint(
            "business_id", "starts_on", name=op.f("uq_billing_plans_business_id_starts_on")
        ),
    )


def downgrade() -> None:
    op.drop_table("billing_plans")
