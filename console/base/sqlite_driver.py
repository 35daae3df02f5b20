"""SQLite's driver for the async engine: aiosqlite, with one trip to its thread per statement.

aiosqlite runs each call on the connection's own thread and hands the answer back to the event
loop; SQLAlchemy's adapter makes four such calls per statement (open a cursor, execute, fetch
the rows, close the cursor). Each trip costs the event loop's thread a future, a wake-up through
the loop's self-pipe and the interpreter lock handed back, and the statement waits for all four:
a web form's group of a dozen statements spent more of the loop's time on trips than on SQL.
Here the cursor is opened, executed, read to the end and closed in one call on the driver's
thread; what SQLAlchemy then asks of the cursor (description, rows, rowcount) is already in
hand. A transaction's BEGIN (`begin_with`, set by `Database`) goes in its first statement's trip,
and a commit or rollback with no transaction open on the driver's connection (a read that ran
nothing, the pool's reset after a commit) makes no trip: a page's read transaction of two
statements was five trips, now three. The connection, its thread and its transactions are
aiosqlite's own.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiosqlite

Ran = tuple[Any, int, int | None, list[Any]]  # description, rowcount, lastrowid, rows


def creator(database: str, **connect_args: Any) -> Callable[[], Awaitable[aiosqlite.Connection]]:
    """`async_creator` for `create_async_engine`: a connection to this file, as aiosqlite's
    `connect` makes it (SQLAlchemy's own arguments: no same-thread check, the caller's)."""

    async def connect() -> aiosqlite.Connection:
        connection = OneTripConnection(
            lambda: sqlite3.connect(database, check_same_thread=False, **connect_args),
            iter_chunk_size=64,
        )
        connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite dialect does
        return await connection

    return connect


class OneTripConnection(aiosqlite.Connection):
    # The BEGIN of a transaction SQLAlchemy has begun, sent with its first statement.
    begin_with: str | None = None

    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)

    async def commit(self) -> None:
        if self._in_transaction():
            await super().commit()

    async def rollback(self) -> None:
        if self._in_transaction():
            await super().rollback()

    def _in_transaction(self) -> bool:
        """Whether SQLite holds a transaction open here; a BEGIN not sent yet is dropped (its
        transaction ran no statement). Read between trips, never while one is under way."""
        self.begin_with = None
        return self._conn.in_transaction


class OneTripCursor:
    """What SQLAlchemy's adapter uses of an aiosqlite cursor; every statement one trip."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: deque[Any] = deque()

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> OneTripCursor:
        await self._on_thread(_execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> OneTripCursor:
        await self._on_thread(_executemany, sql, parameters)
        return self

    async def _on_thread(self, call: Callable[..., Ran], *args: Any) -> None:
        """One call on the connection's thread, through aiosqlite's queue as its cursor does."""
        connection = self._connection
        begin, connection.begin_with = connection.begin_with, None
        ran: Ran = await connection._execute(call, connection._conn, begin, *args)  # type: ignore[no-untyped-call]
        self.description, self.rowcount, self.lastrowid, rows = ran
        self._rows = deque(rows)

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(len(self._rows), size or self.arraysize)
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()  # the driver's cursor was closed on its thread


def _execute(
    connection: sqlite3.Connection, begin: str | None, sql: str, parameters: Sequence[Any] | None
) -> Ran:
    if begin:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        cursor.execute(sql, () if parameters is None else parameters)
        return _ran(cursor)
    finally:
        cursor.close()


def _executemany(
    connection: sqlite3.Connection,
    begin: str | None,
    sql: str,
    parameters: Iterable[Sequence[Any]],
) -> Ran:
    if begin:
        connection.execute(begin)
    cursor = connection.cursor()
    try:
        cursor.executemany(sql, parameters)
        return _ran(cursor)
    finally:
        cursor.close()


def _ran(cursor: sqlite3.Cursor) -> Ran:
    rows = cursor.fetchall() if cursor.description else []
    return cursor.description, cursor.rowcount, cursor.lastrowid, rows
