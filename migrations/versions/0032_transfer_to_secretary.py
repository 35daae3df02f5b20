"""call_transfers.target may be "secretary": a call put through to another secretary's console
phone (console/voice/transfers.py)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 19:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _targets(names: str) -> None:
    with op.batch_alter_table("call_transfers", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_call_transfers_target"), type_="check")
        batch_op.create_check_constraint(op.f("ck_call_transfers_target"), f"target IN ({names})")


def upgrade() -> None:
    _targets("'owner', 'on_call', 'person', 'business', 'secretary'")


def downgrade() -> None:
    op.execute("DELETE FROM call_transfers WHERE target = 'secretary'")
    _targets("'owner', 'on_call', 'person', 'business'")
