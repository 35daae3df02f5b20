"""The service level's N per business: call_settings.service_level_seconds (the KPIs' share of
calls answered within N seconds; 20 by default, the industry's 80/20)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_settings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("service_level_seconds", sa.Integer(), server_default="20", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_call_settings_service_level_seconds"),
            "service_level_seconds BETWEEN 5 AND 600",
        )


def downgrade() -> None:
    with op.batch_alter_table("call_settings", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_call_settings_service_level_seconds"), type_="check")
        batch_op.drop_column("service_level_seconds")
