"""The database: one async engine, sessions in explicit transactions, SQLite tuned for writers."""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import (
    event,
    make_url,
    text,
)
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from console.base import sqlite_driver

log = logging.getLogger("mazkira.db")
AfterCommit = Callable[[list[Any]], Any]
# SQLite's write-ahead log is copied back into the database file by a checkpoint. Left to
# SQLite, the commit that takes the log past 1,000 pages does it, inside that commit, and every
# writer behind it waits. A serving process checkpoints on a thread of its own instead
# (`Database.checkpoints`), outside the interpreter lock, while the event loop goes on; a commit
# checkpoints itself only past this many pages (~40 MB), should that thread fall behind or not
# run (a CLI command, a test's database).
WAL_AUTOCHECKPOINT = 10_000
CHECKPOINT_EVERY = 0.25  # seconds
# A pooled PostgreSQL connection idle longer than this is pinged before it is handed out.
PING_AFTER = 1.0  # seconds
T = TypeVar("T")
# Set while a task holds this process's SQLite write turn (a writer nested in it goes straight on).
_writing: ContextVar[bool] = ContextVar("mazkira_writing", default=False)


class Database:
    """Owns the engine and hands out sessions; the caller of `transaction` owns the commit."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            engine = create_async_engine(
                url,
                echo=echo,
                pool_size=8,
                max_overflow=8,
                async_creator=sqlite_driver.creator(make_url(url).database or "", timeout=30),
            )
            _tune_sqlite(engine)
        else:
            engine = create_async_engine(url, echo=echo, pool_size=10, max_overflow=20)
            _ping_when_idle(engine)
        self.engine: AsyncEngine = engine
        # SQLite takes the write lock at BEGIN for writing transactions, so two writers queue on
        # the busy timeout instead of failing with "database is locked" when one upgrades its lock.
        self._writer = async_sessionmaker(
            engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        self._reader = async_sessionmaker(engine, expire_on_commit=False)
        # A read of one statement (the session behind a request's cookie): on SQLite it runs
        # without BEGIN, a transaction of its own, so it costs one trip to the driver's thread.
        self._lone = async_sessionmaker(
            engine.execution_options(sqlite_lone_read=True), expire_on_commit=False
        )
        self.after_commit: list[AfterCommit] = []
        # Within one process SQLite writers also queue on a lock, in order: SQLite's own busy
        # handler polls in sleeps of up to 100 ms, so a crowd of writers waiting there would leave
        # the write lock idle most of the time.
        self._turns: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        Services queue what should happen after a successful commit (events to publish) in
        `session.info["after_commit"]`; it runs only when the commit went through.
        """
        factory = self._writer if write else self._reader
        async with self._write_turn(write), factory() as session:
            async with session.begin():
                yield session
            queued = session.info.pop("after_commit", [])
        if queued:
            for hook in self.after_commit:
                result = hook(queued)
                if hasattr(result, "__await__"):
                    await result

    @asynccontextmanager
    async def lone_read(self) -> AsyncIterator[AsyncSession]:
        """A session for ONE reading statement: on SQLite no BEGIN and no COMMIT go with it
        (a lone statement is its own transaction, read from one snapshot); on PostgreSQL a read
        transaction as `transaction(write=False)` opens. A second statement in it would read
        another snapshot: use `transaction` for more than one."""
        async with self._lone() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _write_turn(self, write: bool) -> AsyncIterator[None]:
        if not (write and self.is_sqlite) or _writing.get():
            yield
            return
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, asyncio.Lock())
        async with self._turns[1]:
            token = _writing.set(True)
            try:
                yield
            finally:
                _writing.reset(token)

    @asynccontextmanager
    async def checkpoints(self, every: float = CHECKPOINT_EVERY) -> AsyncIterator[None]:
        """While open, SQLite's log is checkpointed every `every` seconds on a connection and a
        thread of their own, PASSIVE: as far as the readers allow, never waiting for nor
        holding up a reader or the writer. Nothing to do on PostgreSQL or in memory."""
        path = make_url(self.url).database if self.is_sqlite else None
        if not path or path == ":memory:" or path.startswith("file:"):
            yield
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_checkpoint_until, args=(path, every, stop), name="sqlite-checkpoints"
        )
        thread.daemon = True
        thread.start()
        try:
            yield
        finally:
            stop.set()
            await asyncio.to_thread(thread.join)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint whose after-commit work (events to publish, runs to ask for) is dropped with
    it when it rolls back: what was undone is never announced."""
    queued: list[Any] = session.info.setdefault("after_commit", [])
    mark = len(queued)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        del queued[mark:]
        raise


async def made_once(
    session: AsyncSession,
    find: Callable[[], Awaitable[T | None]],
    make: Callable[[], Awaitable[T]],
) -> tuple[T, bool]:
    """What a request with a one-time key made before, or make it now (True when new).

    The key is unique in the database; a twin racing this one hits it inside a savepoint,
    and then finds what the twin made. A request racing another one with a different key can
    clash on a row both make along the way (the same new contact): it tries once more, and then
    finds that row made."""
    found = await find()
    if found is not None:
        return found, False
    for attempt in (1, 2):
        try:
            async with savepoint(session):
                return await make(), True
        except IntegrityError:
            found = await find()
            if found is not None:
                return found, False
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def unavailable(error: BaseException) -> bool:
    """The database is down or restarting (refused, reset, shutting down), not a bug: the
    request may be tried again in a moment. Connection failures come raw from the driver
    (sockets refused or reset, asyncpg's SQLSTATE 08xxx and 57P0x) or wrapped by SQLAlchemy."""
    seen: BaseException | None = error
    for _ in range(8):  # the error, what it wraps, and their causes
        if seen is None:
            return False
        if isinstance(seen, (ConnectionError, TimeoutError, socket.gaierror)):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        state = str(getattr(seen, "sqlstate", "") or "")
        if state.startswith("08") or state in {"57P01", "57P02", "57P03"}:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def dialect_of(session: AsyncSession) -> str:
    """ "sqlite" or "postgresql": for the few statements that differ (upserts, row locks)."""
    return session.get_bind().dialect.name


def _checkpoint_until(path: str, every: float, stop: threading.Event) -> None:
    connection = sqlite3.connect(path, check_same_thread=False)
    try:
        while not stop.wait(every):
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as error:  # the next turn tries again; commits are the backstop
                log.warning("SQLite checkpoint failed: %s", error)
    finally:
        connection.close()


def after_commit(session: AsyncSession, item: Any) -> None:
    """Queue `item` for the hooks that run once the session's transaction has committed."""
    session.info.setdefault("after_commit", []).append(item)


def _ping_when_idle(engine: AsyncEngine) -> None:
    """SQLAlchemy's pre-ping, for a connection that has lain in the pool longer than
    `PING_AFTER` seconds: one that failed is dropped and the pool hands out another (or fails,
    and the request answers 503), so a restarted PostgreSQL meets no request with a dead
    connection.
    Pinging every checkout (`pool_pre_ping`) was three round trips before each transaction —
    BEGIN, an empty statement, ROLLBACK — on connections that had just been used; under load
    none has been idle that long. One returned within `PING_AFTER` of a restart fails its first
    statement instead, which answers 503 as a request in flight then does, and the pool
    replaces every connection older than that failure."""

    @event.listens_for(engine.sync_engine, "checkin")
    def returned(_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def taken(connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned <= PING_AFTER:
            return  # new, or used a moment ago
        try:
            connection.ping()
        except engine.dialect.loaded_dbapi.Error as error:  # a dead connection's answer
            raise DisconnectionError() from error  # the pool drops it and takes another


class _SQLiteCompiler(SQLiteCompiler):
    """SQLite's compiler with its table hint: `INDEXED BY`, which SQLAlchemy leaves out. A
    query names the index where SQLite's planner, going by averages, would pick another (a few
    businesses with thousands of open leads look like the average business with ten):
    `.with_hint(Lead, "INDEXED BY ix_leads_open_queue", "sqlite")`."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def _tune_sqlite(engine: AsyncEngine) -> None:
    engine.sync_engine.dialect.statement_compiler = _SQLiteCompiler

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
            f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Any) -> None:
        # Sent by the driver with the transaction's first statement, in the same trip to its
        # thread (`sqlite_driver.OneTripConnection.begin_with`).
        options = connection.get_execution_options()
        if options.get("sqlite_lone_read"):
            return  # `Database.lone_read`: the statement is a transaction of its own
        driver = connection.connection.driver_connection
        driver.begin_with = "BEGIN IMMEDIATE" if options.get("sqlite_immediate") else "BEGIN"
