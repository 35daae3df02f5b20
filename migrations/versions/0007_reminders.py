"""reminders: follow-up moments on leads and contacts, task reminders and acknowledgements,
WhatsApp reply buttons on notifications

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 22:35:21.142808
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("followup_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_contacts_business_last_contact", ["business_id", "last_contact_at"], unique=False
        )
        batch_op.create_index(
            "ix_contacts_followup",
            ["followup_at"],
            unique=False,
            sqlite_where=sa.text("followup_at IS NOT NULL"),
            postgresql_where=sa.text("followup_at IS NOT NULL"),
        )

    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("followup_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_leads_followup",
            ["followup_at"],
            unique=False,
            sqlite_where=sa.text("followup_at IS NOT NULL"),
            postgresql_where=sa.text("followup_at IS NOT NULL"),
        )

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("buttons", sa.JSON(), nullable=True))

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_by_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_via", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("acknowledge_covered_minutes", sa.Float(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_acknowledged_by_id_users"),
            "users",
            ["acknowledged_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_tasks_acknowledged_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("acknowledge_covered_minutes")
        batch_op.drop_column("acknowledged_via")
        batch_op.drop_column("acknowledged_by_id")
        batch_op.drop_column("remind_at")

    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("buttons")

    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_leads_followup",
            sqlite_where=sa.text("followup_at IS NOT NULL"),
            postgresql_where=sa.text("followup_at IS NOT NULL"),
        )
        batch_op.drop_column("followup_at")

    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_contacts_followup",
            sqlite_where=sa.text("followup_at IS NOT NULL"),
            postgresql_where=sa.text("followup_at IS NOT NULL"),
        )
        batch_op.drop_index("ix_contacts_business_last_contact")
        batch_op.drop_column("followed_up_at")
        batch_op.drop_column("followup_at")
