"""lead alarms: a lead's next alert time moves out of the wide leads row into its own table

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 01:09:41.708982
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_alarms",
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_lead_alarms_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lead_id", name=op.f("pk_lead_alarms")),
    )
    with op.batch_alter_table("lead_alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_alarms_due_at"), ["due_at"], unique=False)
    op.execute(
        "INSERT INTO lead_alarms (lead_id, due_at) "
        "SELECT id, next_alert_at FROM leads WHERE next_alert_at IS NOT NULL"
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_leads_next_alert",
            sqlite_where=sa.text("next_alert_at IS NOT NULL"),
            postgresql_where=sa.text("next_alert_at IS NOT NULL"),
        )
        batch_op.drop_column("next_alert_at")


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_alert_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_leads_next_alert",
            ["next_alert_at"],
            unique=False,
            sqlite_where=sa.text("next_alert_at IS NOT NULL"),
            postgresql_where=sa.text("next_alert_at IS NOT NULL"),
        )
    op.execute(
        "UPDATE leads SET next_alert_at = "
        "(SELECT due_at FROM lead_alarms WHERE lead_alarms.lead_id = leads.id)"
    )
    with op.batch_alter_table("lead_alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_alarms_due_at"))
    op.drop_table("lead_alarms")
