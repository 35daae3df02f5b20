"""recording_settings.voicemail_max_seconds: a voicemail message's longest, per business

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recording_settings") as batch:
        batch.add_column(
            sa.Column("voicemail_max_seconds", sa.Integer(), nullable=False, server_default="120")
        )


def downgrade() -> None:
    with op.batch_alter_table("recording_settings") as batch:
        batch.drop_column("voicemail_max_seconds")
