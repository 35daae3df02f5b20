"""owner_notices (a message after each call, quiet hours, language, the digest's hour, channel
and content; per business and per person), notifications.lead_id and seen_at, and an index of
the failed sends for the admin's page

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owner_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("calls", sa.String(length=8), nullable=False),
        sa.Column("quiet_from", sa.String(length=5), nullable=False),
        sa.Column("quiet_to", sa.String(length=5), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("digest_hour", sa.Integer(), nullable=False),
        sa.Column("digest_channel", sa.String(length=16), nullable=False),
        sa.Column("digest_sections", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "calls IN ('every', 'urgent', 'none')", name=op.f("ck_owner_notices_calls")
        ),
        sa.CheckConstraint(
            "digest_channel IN ('', 'email', 'sms', 'whatsapp')",
            name=op.f("ck_owner_notices_digest_channel"),
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_owner_notices_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_owner_notices_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owner_notices")),
    )
    op.create_index(
        "uq_owner_notices_business",
        "owner_notices",
        ["business_id"],
        unique=True,
        sqlite_where=sa.text("user_id IS NULL"),
        postgresql_where=sa.text("user_id IS NULL"),
    )
    op.create_index(
        "uq_owner_notices_person",
        "owner_notices",
        ["business_id", "user_id"],
        unique=True,
        sqlite_where=sa.text("user_id IS NOT NULL"),
        postgresql_where=sa.text("user_id IS NOT NULL"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(
            "ix_notifications_failed",
            ["created_at"],
            unique=False,
            sqlite_where=sa.text("status = 'failed'"),
            postgresql_where=sa.text("status = 'failed'"),
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_lead_id_leads"),
            "leads",
            ["lead_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notifications_lead_id_leads"), type_="foreignkey")
        batch_op.drop_index("ix_notifications_failed")
        batch_op.drop_index(batch_op.f("ix_notifications_lead_id"))
        batch_op.drop_column("seen_at")
        batch_op.drop_column("lead_id")
    op.drop_index("uq_owner_notices_person", table_name="owner_notices")
    op.drop_index("uq_owner_notices_business", table_name="owner_notices")
    op.drop_table("owner_notices")
