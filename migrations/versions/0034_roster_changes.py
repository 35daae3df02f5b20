"""roster_changes: a counter that every write routing's roster reads from moves, so the roster's
periodic reload reads one number and loads only when it moved (console/voice/roster.py)

SQLite counts in the table's one row (its writer is one at a time anyway). PostgreSQL counts in
the sequence `roster_changes_seq` (nextval takes no row lock: a counter row would hold every
ring's transaction behind the last one's commit); its table stays empty.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The roster's tables, and what writes to them move it: of a business only `active`, of a user
# only `active` and `role` (a business's event sequence and a sign-in move nothing).
WATCHED = {
    "businesses": ("active",),
    "users": ("active", "role"),
    "secretary_assignments": (),
    "call_settings": (),
    "overflow_rules": (),
    "recording_settings": (),
    "agent_states": (),
    "calls": (),
}
BUMP_SQLITE = (
    "INSERT INTO roster_changes (id, counter) VALUES (1, 1) "
    "ON CONFLICT (id) DO UPDATE SET counter = counter + 1"
)


def upgrade() -> None:
    op.create_table(
        "roster_changes",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_changes")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE roster_changes_seq")
        op.execute(
            "CREATE FUNCTION roster_changed() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM nextval('roster_changes_seq'); RETURN NULL; END $$"
        )
        for table, columns in WATCHED.items():
            update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
            op.execute(
                f"CREATE TRIGGER roster_changed AFTER INSERT OR DELETE OR {update} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION roster_changed()"
            )
        return
    for table, columns in WATCHED.items():
        update = f"UPDATE OF {', '.join(columns)}" if columns else "UPDATE"
        for name, when in (("insert", "INSERT"), ("delete", "DELETE"), ("update", update)):
            op.execute(
                f"CREATE TRIGGER roster_changed_{table}_{name} AFTER {when} ON {table} "
                f"BEGIN {BUMP_SQLITE}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER roster_changed ON {table}")
        op.execute("DROP FUNCTION roster_changed()")
        op.execute("DROP SEQUENCE roster_changes_seq")
    else:
        for table in WATCHED:
            for name in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER roster_changed_{table}_{name}")
    op.drop_table("roster_changes")
