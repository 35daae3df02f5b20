"""Alembic, driven from code: `mazkira migrate`, the demo and the tests build the schema alike."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from console.base.db import Database

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def _upgrade_on(connection: Connection, config: Config) -> None:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(db: Database) -> None:
    """Bring the schema to the newest revision; a no-op when it is there already."""
    async with db.engine.begin() as connection:
        await connection.run_sync(_upgrade_on, alembic_config(db.url))


def _revision_on(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def pending(db: Database) -> str | None:
    """None when the schema is at the newest revision; else what it is at and what it needs
    (`/readyz`, `mazkira check`)."""
    async with db.engine.connect() as connection:
        current = await connection.run_sync(_revision_on)
    head = head_revision()
    if current == head:
        return None
    return f"the schema is at {current or 'nothing'}, the code needs {head}: run `mazkira migrate`"
