"""call_transfers: calls put through to the owner, the on-call person or another line, blind or
after talking to him first, with when he answered and hung up (from the SIP server's events)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "call_transfers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("by_id", sa.Uuid(), nullable=True),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("target", sa.String(length=12), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consult_call_id", sa.String(length=200), nullable=True),
        sa.Column("consult_answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consult_ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leg_call_id", sa.String(length=200), nullable=True),
        sa.Column("leg_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('blind', 'warm')", name=op.f("ck_call_transfers_kind")),
        sa.CheckConstraint(
            "target IN ('owner', 'on_call', 'person', 'business')",
            name=op.f("ck_call_transfers_target"),
        ),
        sa.CheckConstraint(
            "outcome IN ('requested', 'consulting', 'ringing', 'connected', 'returned', 'failed')",
            name=op.f("ck_call_transfers_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_call_transfers_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_transfers_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_call_transfers_lead_id_leads"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["by_id"], ["users.id"], name=op.f("fk_call_transfers_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["users.id"],
            name=op.f("fk_call_transfers_person_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_transfers")),
    )
    op.create_index("uq_call_transfers_token", "call_transfers", ["token"], unique=True)
    op.create_index("ix_call_transfers_call", "call_transfers", ["call_id"])
    op.create_index("ix_call_transfers_lead", "call_transfers", ["lead_id"])
    op.create_index("ix_call_transfers_leg", "call_transfers", ["leg_call_id"])
    op.create_index("ix_call_transfers_consult", "call_transfers", ["consult_call_id"])


def downgrade() -> None:
    op.drop_table("call_transfers")
