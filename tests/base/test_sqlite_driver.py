"""SQLite's driver (console/base/sqlite_driver.py): one trip to the driver's thread per statement,
and everything SQLAlchemy reads of a cursor as aiosqlite's own cursor gives it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from console.base import sqlite_driver
from console.base.db import Database

METADATA = MetaData()
NOTES = Table(
    "notes",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("text", String, unique=True),
)


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as connection:
        await connection.run_sync(METADATA.create_all)
    yield database
    await database.dispose()


async def test_each_statement_is_one_trip_and_reads_like_a_cursor(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: list[str] = []
    original = sqlite_driver.OneTripConnection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(getattr(fn, "__name__", "?"))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    async with db.transaction() as session:  # the connection is opened before counting
        await session.execute(select(1))
    monkeypatch.setattr(sqlite_driver.OneTripConnection, "_execute", counted)

    async with db.transaction() as session:
        trips.clear()
        many = cast(
            CursorResult[Any],
            await session.execute(insert(NOTES), [{"text": f"n{n}"} for n in range(5)]),
        )
        assert many.rowcount == 5
        changed = cast(
            CursorResult[Any],
            await session.execute(
                update(NOTES).where(NOTES.c.id > 2).values(text=NOTES.c.text + "!")
            ),
        )
        assert changed.rowcount == 3
        rows = (await session.execute(select(NOTES.c.text).order_by(NOTES.c.id))).all()
        assert [text for (text,) in rows] == ["n0", "n1", "n2!", "n3!", "n4!"]
        # BEGIN IMMEDIATE with the INSERT, the UPDATE, the SELECT (aiosqlite alone: a trip for
        # the BEGIN, then 3, 3 and 4)
        assert trips == ["_executemany", "_execute", "_execute"]
        one = cast(CursorResult[Any], await session.execute(insert(NOTES).values(text="solo")))
        assert one.inserted_primary_key == (6,)  # lastrowid, read on the thread

    trips.clear()
    async with db.transaction(write=False) as session:  # a transaction that ran nothing
        pass
    async with db.transaction(write=False) as session:  # BEGIN with the SELECT, the COMMIT
        await session.execute(select(NOTES.c.id))
    assert trips == ["_execute", "commit"]  # and no ROLLBACK when the pool takes it back
    trips.clear()
    async with db.lone_read() as session:  # a lone statement: no BEGIN, no COMMIT
        assert await session.scalar(select(func.count()).select_from(NOTES)) == 6
    assert trips == ["_execute"]

    async with db.engine.connect() as connection:  # a streamed result reads the same rows
        streamed = await connection.stream(select(NOTES.c.id).order_by(NOTES.c.id))
        assert [row async for (row,) in streamed] == [1, 2, 3, 4, 5, 6]


async def test_an_error_comes_back_and_the_connection_goes_on(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(insert(NOTES).values(text="once"))
    with pytest.raises(IntegrityError):
        async with db.transaction() as session:
            await session.execute(insert(NOTES).values(text="twice"))
            await session.execute(insert(NOTES).values(text="once"))
    async with db.transaction(write=False) as session:  # the failed one left nothing behind
        assert await session.scalar(select(func.count()).select_from(NOTES)) == 1


async def test_the_log_goes_into_the_file_on_the_checkpoint_thread_not_in_commits(
    db: Database, tmp_path: Path
) -> None:
    """Commits leave SQLite's log alone well past its default 1,000 pages (the commit that
    crossed them copied the log into the file, and took 8-9 ms instead of 1, every few
    web-form groups); `Database.checkpoints`, which the serving app keeps open, copies it on
    a thread of its own."""
    path = tmp_path / "driver.db"
    before = path.stat().st_size
    for n in range(40):  # ~1,600 pages of log: rows of ~500 bytes and their unique index
        async with db.transaction() as session:
            await session.execute(
                insert(NOTES), [{"text": f"{n}-{k}-" + "x" * 500} for k in range(150)]
            )
    assert (tmp_path / "driver.db-wal").stat().st_size > 1_000 * 4096
    assert path.stat().st_size == before  # every page still in the log
    async with db.checkpoints(every=0.01):
        for _ in range(500):
            if path.stat().st_size > before:
                break
            await asyncio.sleep(0.01)
    assert path.stat().st_size > before + 1_000 * 4096
    async with db.transaction(write=False) as session:  # what the file holds is all there
        assert await session.scalar(select(func.count()).select_from(NOTES)) == 40 * 150
