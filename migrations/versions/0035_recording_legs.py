"""recordings.sip_call_id: one recording per call leg (a call put through to another secretary
has a second one, its caller's leg to her), kept once per leg

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("sip_call_id", sa.String(length=200), nullable=True))
    # The recordings so far were each its call's own leg.
    op.execute(
        "UPDATE recordings SET sip_call_id = "
        "(SELECT calls.sip_call_id FROM calls WHERE calls.id = recordings.call_id) "
        "WHERE call_id IS NOT NULL"
    )
    with op.batch_alter_table("recordings") as batch:
        batch.create_index("uq_recordings_sip_call", ["sip_call_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_index("uq_recordings_sip_call")
        batch.drop_column("sip_call_id")
