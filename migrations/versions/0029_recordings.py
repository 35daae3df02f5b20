"""recordings and recording_settings: call recordings, voicemail, their settings per business

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("call_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=40), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('call', 'voicemail')", name=op.f("ck_recordings_kind")),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_recordings_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_recordings_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_recordings_call_id_calls"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index("ix_recordings_lead", ["lead_id"], unique=False)
        batch_op.create_index("uq_recordings_key", ["key"], unique=True)
    op.create_table(
        "recording_settings",
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("record_calls", sa.Boolean(), nullable=False),
        sa.Column("announcement_key", sa.String(length=200), nullable=True),
        sa.Column("greeting_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_recording_settings_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("business_id", name=op.f("pk_recording_settings")),
    )


def downgrade() -> None:
    op.drop_table("recording_settings")
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("uq_recordings_key")
        batch_op.drop_index("ix_recordings_lead")
    op.drop_table("recordings")
