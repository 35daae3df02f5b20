"""on_call_rotas, pages and overflow_rules: a business's on-call rota and escalation chain, the
pages sent down it for an urgent hand-off, and what a call does when nobody takes it

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 12:34:33.965859
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "on_call_rotas",
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("ack_minutes", sa.Integer(), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("weekly", sa.JSON(), nullable=False),
        sa.Column("dates", sa.JSON(), nullable=False),
        sa.Column("holidays", sa.String(length=32), nullable=False),
        sa.Column("eves", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "ack_minutes BETWEEN 1 AND 240", name=op.f("ck_on_call_rotas_ack_minutes")
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_on_call_rotas_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_on_call_rotas")),
    )
    op.create_table(
        "overflow_rules",
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("waiting", sa.String(length=16), nullable=False),
        sa.Column("closed", sa.String(length=16), nullable=False),
        sa.Column("holiday", sa.String(length=16), nullable=False),
        sa.Column("other_business_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "closed IN ('', 'voicemail', 'on_call', 'business', 'callback')",
            name=op.f("ck_overflow_rules_closed"),
        ),
        sa.CheckConstraint(
            "holiday IN ('', 'voicemail', 'on_call', 'business', 'callback')",
            name=op.f("ck_overflow_rules_holiday"),
        ),
        sa.CheckConstraint(
            "waiting IN ('', 'voicemail', 'on_call', 'business', 'callback')",
            name=op.f("ck_overflow_rules_waiting"),
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_overflow_rules_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_business_id"],
            ["businesses.id"],
            name=op.f("fk_overflow_rules_other_business_id_businesses"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_overflow_rules")),
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reach", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=True),
        sa.Column("paged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_via", sa.String(length=16), nullable=True),
        sa.Column("passed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_pages_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_pages_lead_id_leads"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_pages_notification_id_notifications"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_pages_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pages_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pages")),
    )
    op.create_index("ix_pages_open_due", "pages", ["ack_due_at"])
    op.create_index("ix_pages_recipient_code", "pages", ["recipient", "code"])
    op.create_index("ix_pages_task", "pages", ["task_id", "position"], unique=True)
    op.create_index("ix_pages_lead", "pages", ["lead_id"])


def downgrade() -> None:
    for name in ("ix_pages_lead", "ix_pages_task", "ix_pages_recipient_code", "ix_pages_open_due"):
        op.drop_index(name, table_name="pages")
    op.drop_table("pages")
    op.drop_table("overflow_rules")
    op.drop_table("on_call_rotas")
