"""owner portal: ratings of handled calls, comments on leads and tasks, the owner's
availability, and whether an owner may publish his own script

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 23:18:05.092818
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("request_key", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "lead_id IS NOT NULL OR task_id IS NOT NULL", name=op.f("ck_comments_subject")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_comments_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_comments_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_comments_lead_id_leads"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_comments_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index("ix_comments_lead_created", ["lead_id", "created_at"], unique=False)
        batch_op.create_index("ix_comments_task_created", ["task_id", "created_at"], unique=False)
        batch_op.create_index(
            "uq_comments_business_request_key", ["business_id", "request_key"], unique=True
        )

    op.create_table(
        "interaction_ratings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("business_id", sa.Uuid(), nullable=False),
        sa.Column("interaction_id", sa.Uuid(), nullable=False),
        sa.Column("rated_by_id", sa.Uuid(), nullable=True),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("stars BETWEEN 1 AND 5", name=op.f("ck_interaction_ratings_stars")),
        sa.ForeignKeyConstraint(
            ["business_id"],
            ["businesses.id"],
            name=op.f("fk_interaction_ratings_business_id_businesses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["interaction_id"],
            ["interactions.id"],
            name=op.f("fk_interaction_ratings_interaction_id_interactions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["rated_by_id"],
            ["users.id"],
            name=op.f("fk_interaction_ratings_rated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interaction_ratings")),
        sa.UniqueConstraint("interaction_id", name=op.f("uq_interaction_ratings_interaction_id")),
    )
    with op.batch_alter_table("interaction_ratings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interaction_ratings_business_rated", ["business_id", "rated_at"], unique=False
        )

    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_business_started", ["business_id", "started_at"], unique=False
        )

    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("owner_may_publish", sa.Boolean(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("away_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("away_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("away_note", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_users_away_kind"), "away_kind IN ('meeting', 'vacation', 'away')"
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_users_away_kind"), type_="check")
        batch_op.drop_column("away_note")
        batch_op.drop_column("away_until")
        batch_op.drop_column("away_kind")

    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("owner_may_publish")

    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_business_started")

    with op.batch_alter_table("interaction_ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_interaction_ratings_business_rated")
    op.drop_table("interaction_ratings")

    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index("uq_comments_business_request_key")
        batch_op.drop_index("ix_comments_task_created")
        batch_op.drop_index("ix_comments_lead_created")
    op.drop_table("comments")
