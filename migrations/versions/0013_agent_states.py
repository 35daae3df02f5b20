"""agent states: each secretary's state now, her spans per state, and each business's call settings

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 09:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = "('available', 'ringing', 'on_call', 'wrap_up', 'break', 'offline')"


def upgrade() -> None:
    op.create_table(
        "agent_states",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("free_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("business_id", sa.Uuid(), nullable=True),
        sa.Column("resume_state", sa.String(length=16), nullable=True),
        sa.Column("resume_reason", sa.String(length=32), nullable=True),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_agent_states_state")),
        sa.CheckConstraint(f"resume_state IN {STATES}", name=op.f("ck_agent_states_resume_state")),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_agent_states_business_id_businesses"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_states_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_states")),
    )
    op.create_table(
        "agent_state_spans",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(f"state IN {STATES}", name=op.f("ck_agent_state_spans_state")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_state_spans_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_spans")),
    )
    with op.batch_alter_table("agent_state_spans", schema=None) as batch_op:
        batch_op.create_index("ix_agent_state_spans_started_at", ["started_at"], unique=False)
        batch_op.create_index(
            "ix_agent_state_spans_user_id_started_at", ["user_id", "started_at"], unique=False
        )
    op.create_table(
        "call_settings",
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("ring_seconds", sa.Integer(), nullable=False),
        sa.Column("wait_limit_seconds", sa.Integer(), nullable=False),
        sa.Column("wrap_up_seconds", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "ring_seconds BETWEEN 5 AND 120", name=op.f("ck_call_settings_ring_seconds")
        ),
        sa.CheckConstraint(
            "wait_limit_seconds BETWEEN 0 AND 3600",
            name=op.f("ck_call_settings_wait_limit_seconds"),
        ),
        sa.CheckConstraint(
            "wrap_up_seconds BETWEEN 0 AND 900", name=op.f("ck_call_settings_wrap_up_seconds")
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_call_settings_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_call_settings")),
    )


def downgrade() -> None:
    op.drop_table("call_settings")
    with op.batch_alter_table("agent_state_spans", schema=None) as batch_op:
        batch_op.drop_index("ix_agent_state_spans_user_id_started_at")
        batch_op.drop_index("ix_agent_state_spans_started_at")
    op.drop_table("agent_state_spans")
    op.drop_table("agent_states")
