"""leads.phone_check (a web form's number kept although its range is not allocated) and
contacts.earlier_value (purchases before the won deals recorded here)

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(
            sa.Column("phone_check", sa.String(length=40), server_default="", nullable=False)
        )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column(
                "earlier_value",
                sa.Numeric(precision=12, scale=2),
                server_default="0",
                nullable=False,
            )
        )
    # What the cards held as lifetime value was typed: it becomes the earlier purchases, and
    # the lifetime value adds the won deals to it from now on.
    op.execute(
        "UPDATE contacts SET earlier_value = lifetime_value, lifetime_value = lifetime_value + "
        "COALESCE((SELECT SUM(deal_value) FROM leads WHERE leads.contact_id = contacts.id "
        "AND leads.stage = 'won'), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("earlier_value")
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("phone_check")
