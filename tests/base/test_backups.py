"""`mazkira backup` and `mazkira restore`, as an operator runs them: the demo agency backed up,
its database wiped, restored, and every row of every table found again, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import text

from console.base.db import Database
from console.base.migrate import upgrade
from console.demo.demo import seed_if_empty
from models import Base
from tests.servers import ROOT


def mazkira(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "k" * 48}
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def every_row(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    found: dict[str, list[tuple[Any, ...]]] = {}
    async with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(table.select())).all()
            found[table.name] = sorted((tuple(row) for row in rows), key=repr)
        found["alembic_version"] = [
            tuple(row) for row in await session.execute(text("SELECT * FROM alembic_version"))
        ]
    return found


async def test_backup_wipe_restore_on_sqlite(tmp_path: Path) -> None:
    await backup_wipe_restore("sqlite", f"sqlite:///{tmp_path / 'agency.db'}", tmp_path)


async def test_backup_wipe_restore_on_postgres(private_postgres_url: str, tmp_path: Path) -> None:
    await backup_wipe_restore("postgres", private_postgres_url, tmp_path)


async def backup_wipe_restore(backend: str, url: str, tmp_path: Path) -> None:
    db = Database(url.replace("sqlite://", "sqlite+aiosqlite://"))
    await upgrade(db)
    async with db.transaction() as session:
        assert await seed_if_empty(session)
    before = await every_row(db)
    assert sum(map(len, before.values())) > 200 and before["leads"] and before["interactions"]

    file = tmp_path / "backups" / "mazkira.backup"
    saved = mazkira(url, "backup", str(file))
    assert saved.returncode == 0, saved.stderr
    assert file.exists() and not file.with_name("mazkira.backup.partial").exists()
    assert "SECRET_KEY" in saved.stdout  # the key is not in the file: kept beside it

    # wiped: the tables gone, as after losing the disk or a DROP by mistake
    async with db.engine.begin() as connection:
        if backend == "sqlite":
            for table in [
                *(t.name for t in reversed(Base.metadata.sorted_tables)),
                "alembic_version",
            ]:
                await connection.execute(text(f'DROP TABLE "{table}"'))
        else:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await db.dispose()

    restored = mazkira(url, "restore", str(file))
    assert restored.returncode == 0, restored.stderr
    db = Database(url.replace("sqlite://", "sqlite+aiosqlite://"))
    try:
        assert await every_row(db) == before
    finally:
        await db.dispose()

    # the wrong kind of file, or none, is refused in words and changes nothing
    other = tmp_path / "other.backup"
    other.write_bytes(b"PGDMP" if backend == "sqlite" else b"SQLite format 3\x00")
    wrong = mazkira(url, "restore", str(other))
    assert wrong.returncode == 1 and "is not a" in wrong.stderr and "Traceback" not in wrong.stderr
    missing = mazkira(url, "restore", str(tmp_path / "nothing.backup"))
    assert missing.returncode == 1 and "there is no backup file" in missing.stderr
