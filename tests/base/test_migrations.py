"""The schema comes from Alembic, and the models say the same thing as the migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from console.base.db import Database
from models import Base


async def test_models_match_migrations(db: Database) -> None:
    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_migrations_go_down_and_up_again(tmp_path: object) -> None:
    from alembic import command

    from console.base.migrate import alembic_config, upgrade

    db = Database(f"sqlite+aiosqlite:///{tmp_path}/roundtrip.db")
    await upgrade(db)

    def down(connection: object) -> None:
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.downgrade(config, "base")

    async with db.engine.begin() as connection:
        await connection.run_sync(down)
    await upgrade(db)
    assert await db.ping()
    await db.dispose()
