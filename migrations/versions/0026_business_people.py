"""People of a business and changes that wait for the agency: owner_memberships.member_role
("owner", "manager" or "staff"), businesses.contract_hours, and change_requests

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 16:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("owner_memberships", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("member_role", sa.String(16), server_default="owner", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_owner_memberships_member_role"),
            "member_role IN ('owner', 'manager', 'staff')",
        )
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contract_hours", sa.JSON(), nullable=True))
    op.create_table(
        "change_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("asked", sa.JSON(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requested_by_id", sa.Uuid(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'declined', 'withdrawn')",
            name=op.f("ck_change_requests_state"),
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_change_requests_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_change_requests_requested_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["users.id"],
            name=op.f("fk_change_requests_decided_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_requests")),
    )
    op.create_index(
        "ix_change_requests_business_state", "change_requests", ["business_id", "state"]
    )
    op.create_index("ix_change_requests_state_at", "change_requests", ["state", "requested_at"])


def downgrade() -> None:
    op.drop_index("ix_change_requests_state_at", table_name="change_requests")
    op.drop_index("ix_change_requests_business_state", table_name="change_requests")
    op.drop_table("change_requests")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("contract_hours")
    with op.batch_alter_table("owner_memberships", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_owner_memberships_member_role"), type_="check")
        batch_op.drop_column("member_role")
