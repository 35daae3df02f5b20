"""The database: one async engine, sessions in explicit transactions, SQLite tuned for writers."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    event,
    func,
    insert,
    make_url,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Result
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.base import Executable
from sqlalchemy.types import JSON, TypeEngine

from console import sqlite_driver

log = logging.getLogger("mazkira.db")
AfterCommit = Callable[[list[Any]], Any]
# SQLite's write-ahead log is copied back into the database file by a checkpoint. Left to
# SQLite, the commit that takes the log past 1,000 pages does it, inside that commit: under
# bench.intake every other web-form group's commit took 8–9 ms instead of 1. A serving process
# checkpoints on a thread of its own instead (`Database.checkpoints`), outside the interpreter
# lock, while the event loop goes on; a commit checkpoints itself only past this many pages
# (~40 MB), should that thread fall behind or not run (a CLI command, a test's database).
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
        self.after_commit: list[AfterCommit] = []
        # Within one process SQLite writers also queue on a lock, in order: SQLite's own busy
        # handler polls in sleeps of up to 100 ms, so a crowd of writers waiting there left the
        # write lock idle most of the time (web-form intake under load fell to a tenth).
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
            async with session.begin_nested():
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


async def execute_core(
    session: AsyncSession, statement: Executable, params: Any = None
) -> Result[*tuple[Any, ...]]:
    """A Core statement on the session's connection, past the ORM's execute (~35 µs of CPU a
    statement on asyncpg, a tenth of a web-form group's statements' CPU). Unless the session
    holds ORM changes not yet flushed: then through the session, whose autoflush writes them
    first, as the statement may depend on them."""
    if session.new or session.dirty or session.deleted:
        return await session.execute(statement, params)
    return await (await session.connection()).execute(statement, params)


def dialect_of(session: AsyncSession) -> str:
    """ "sqlite" or "postgresql": for the few statements that differ (upserts, row locks)."""
    return session.get_bind().dialect.name


class ByPairs:
    """A lookup of the rows whose (first, second) is one of many pairs, built once per dialect
    (`statements`; `params` fills them for one list of pairs), with one probe of the unique
    index on (first, second) per pair however big the table:

    - PostgreSQL: the pairs unnested from two array parameters, each looked up in a LATERAL
      subquery with LIMIT 1, which the planner cannot turn into a join. `first IN (…) AND
      second IN (…)` read every row of the businesses named and filtered them (a web-form
      group's lookups took 33 ms at 10,000 leads), and a plain join on the unnested pairs still
      chose a whole-table scan for contacts.
    - SQLite: the pairs as one JSON parameter, `json_each` joined to the table (its planner
      walks the list and probes the index). `first IN (…) AND second IN (…)` probed every
      combination of the two lists, `(first, second) IN (VALUES …)` scans the table, and a
      VALUES list of the pairs cannot be cached, so it was compiled again for every group.

    `name` keeps the parameters of two lookups in one statement apart."""

    def __init__(
        self,
        name: str,
        columns: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
        first: QueryableAttribute[Any],
        second: QueryableAttribute[Any],
    ) -> None:
        self.name, self.types = name, (first.expression.type, second.expression.type)
        unnested = (
            func.unnest(
                bindparam(f"{name}_firsts", type_=postgresql.ARRAY(self.types[0])),
                bindparam(f"{name}_seconds", type_=postgresql.ARRAY(self.types[1])),
            )
            .table_valued("first", "second")
            .render_derived(name=f"{name}_wanted")
        )
        found = (
            select(*columns)
            .where(first == unnested.c.first, second == unnested.c.second)
            .limit(1)
            .lateral(f"{name}_found")
        )
        listed = func.json_each(bindparam(f"{name}_pairs")).table_valued("value").alias()
        self.statements: dict[str, Select[Any]] = {
            "postgresql": select(*found.c).select_from(unnested).join(found, true()),
            "sqlite": select(*columns).join_from(
                listed,
                first.class_,
                and_(
                    first == func.json_extract(listed.c.value, "$[0]"),
                    second == func.json_extract(listed.c.value, "$[1]"),
                ),
            ),
        }

    def params(self, session: AsyncSession, pairs: Collection[tuple[Any, Any]]) -> dict[str, Any]:
        dialect = session.get_bind().dialect
        if dialect.name == "postgresql":
            return {
                f"{self.name}_firsts": [a for a, _ in pairs],
                f"{self.name}_seconds": [b for _, b in pairs],
            }
        return {f"{self.name}_pairs": json_rows(session, self.types, pairs)}


class RowsInsert:
    """A group's new rows of one table in one statement however many, compiled once per set of
    columns. On PostgreSQL the rows go as one array per column, unnested: an executemany is a
    Bind and an Execute per row, each starting PostgreSQL's executor again, and for a web-form
    group of 64 that cost more of its CPU than the rows themselves (`bench.intake`,
    docs/architecture.md). On SQLite, in the same process, an executemany is cheap and stays.
    Rows are inserted in the order given (a group's rows in key order wait for another's in the
    same order) and must all carry the same keys; a column they leave out gets its Python-side
    default per row, as an executemany would give it."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.statements: dict[tuple[str, ...], Insert] = {}
        # A JSON column's values go as text: an array of lists would be read as two dimensions.
        # (With whether None is SQL's NULL, as the column's type says, or JSON's null.)
        self.json_keys = {c.key: c.type.none_as_null for c in table.c if isinstance(c.type, JSON)}

    async def __call__(self, session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        if dialect_of(session) != "postgresql":
            await execute_core(session, insert(self.table), list(rows))
            return
        params = {key: [row[key] for row in rows] for key in rows[0]}
        for column in self.table.c:
            default = column.default
            if column.key in params or default is None:
                continue
            if default.is_callable:
                params[column.key] = [default.arg(None) for _ in rows]  # type: ignore[attr-defined]
            elif default.is_scalar:
                params[column.key] = [default.arg] * len(rows)  # type: ignore[attr-defined]
            else:  # a SQL expression or a sequence: left to the executemany
                await execute_core(session, insert(self.table), list(rows))
                return
        for key, as_null in self.json_keys.items():  # as text, cast back in the statement
            if key in params:
                params[key] = [
                    None if value is None and as_null else json.dumps(value)
                    for value in params[key]
                ]
        await execute_core(session, self._statement(tuple(params)), params)

    def _statement(self, keys: tuple[str, ...]) -> Insert:
        statement = self.statements.get(keys)
        if statement is None:
            columns = [self.table.c[key] for key in keys]
            rows = (
                func.unnest(
                    *(
                        bindparam(c.key, type_=postgresql.ARRAY(self._carried(c.key, c.type)))
                        for c in columns
                    )
                )
                .table_valued(*keys)
                .render_derived(name="rows")
            )
            values = [
                cast(rows.c[c.key], c.type) if c.key in self.json_keys else rows.c[c.key]
                for c in columns
            ]
            statement = insert(self.table).from_select(keys, select(*values))
            self.statements[keys] = statement
        return statement

    def _carried(self, key: str, kind: TypeEngine[Any]) -> TypeEngine[Any]:
        return Text() if key in self.json_keys else kind


def json_rows(
    session: AsyncSession, types: Sequence[TypeEngine[Any]], rows: Iterable[Sequence[Any]]
) -> str:
    """Rows for SQLite's `json_each` (one parameter, however many rows, so the statement is
    compiled once): each value as its column holds it (a UUID as SQLite's hex text), so that SQL
    compares them with the columns."""
    dialect = session.get_bind().dialect
    stored: list[Callable[[Any], Any]] = [kind.bind_processor(dialect) or _as_is for kind in types]
    return json.dumps(
        [[store(value) for store, value in zip(stored, row, strict=True)] for row in rows]
    )


def _as_is(value: Any) -> Any:
    return value


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


def _tune_sqlite(engine: AsyncEngine) -> None:
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
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
