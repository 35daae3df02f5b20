"""This run's own PostgreSQL database and Redis database index, so that two test runs on one
machine (two engineers, an editor's runner beside a terminal) never touch each other's data.

PostgreSQL: the run's databases are named `mazkira_test_<host>_<pid>_<random>` (a suffix for a
test's private ones); they are made when a test first needs them and dropped at the end of the
session, with an atexit hook as a safety net. The first run to make one also drops what earlier
runs on this host left behind when their process is gone (killed, crashed, or cut off by the
terminal).

Redis: the run claims one database index with a key in database 0 (`SET NX`, with an expiry that a
thread renews while the run lasts), empties only that index, and gives it back at the end; the
claim of a run that died expires by itself. The app's pub/sub channel and arq's keys are named
after the index, so nothing of one run reaches another.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import re
import secrets
import socket
import threading
from collections.abc import AsyncIterator
from urllib.parse import urlparse

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

# The host in a name: a pid says whether a run is alive only on the machine that started it.
HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
PREFIX = "mazkira_test_"
RUN_NAME = re.compile(
    rf"^{PREFIX}(?P<host>[0-9a-f]{{6}})_(?P<pid>[0-9]+)_(?P<run>[0-9a-f]{{8}})(_[0-9]+)?$"
)


def process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class OwnPostgres:
    """The databases this run makes on a PostgreSQL server; the server's URL names no database
    of ours (its database, if any, is not used: the run connects to `postgres` to make its own)."""

    def __init__(self, server: str) -> None:
        self.server = make_url(server)
        self.pid = os.getpid()
        self.run = secrets.token_hex(4)
        self.name = f"{PREFIX}{HOST}_{self.pid}_{self.run}"
        self.made: list[str] = []  # still on the server
        self.used: list[str] = []  # ever made, for the run's summary
        self._suffixes = itertools.count(1)

    def url_of(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    async def create(self, *, private: bool = False) -> str:
        """The run's database, new and empty (with `private`, another one for a test's own
        processes); its URL."""
        name = f"{self.name}_{next(self._suffixes)}" if private else self.name
        async with self._admin() as connection:
            if not self.used:
                await self._drop_leftovers(connection)
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.made.append(name)
        self.used.append(name)
        return self.url_of(name)

    async def drop_all(self) -> None:
        if os.getpid() != self.pid or not self.made:
            return  # a forked child owns nothing
        async with self._admin() as connection:
            while self.made:
                name = self.made.pop()
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_all_at_exit(self) -> None:
        """The safety net when the session's teardown did not run (or failed halfway)."""
        if self.made and os.getpid() == self.pid:
            with contextlib.suppress(Exception):
                asyncio.run(self.drop_all())

    def is_leftover(self, name: str) -> bool:
        found = RUN_NAME.match(name)
        if found is None or found["host"] != HOST:
            return False
        pid = int(found["pid"])
        if pid == self.pid:
            return found["run"] != self.run  # an earlier process that had this pid
        return process_is_gone(pid)

    async def on_server(self) -> list[str]:
        """The databases of every test run found on the server now."""
        async with self._admin() as connection:
            return await self._run_databases(connection)

    @staticmethod
    async def _run_databases(connection: AsyncConnection) -> list[str]:
        names = await connection.scalars(
            text(r"SELECT datname FROM pg_database WHERE datname LIKE 'mazkira\_test\_%'")
        )
        return [name for name in names.all() if RUN_NAME.match(name)]

    async def _drop_leftovers(self, connection: AsyncConnection) -> None:
        for name in await self._run_databases(connection):
            if self.is_leftover(name):
                # another run may be dropping it at the same moment
                with contextlib.suppress(DBAPIError):
                    await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    @contextlib.asynccontextmanager
    async def _admin(self) -> AsyncIterator[AsyncConnection]:
        admin: URL = self.server.set(database="postgres")
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                yield connection
        finally:
            await engine.dispose()


class OwnRedisIndex:
    """One database index of a Redis server, held by this run alone while it lasts.

    The index the server's URL names is tried first, then the others from the highest down;
    database 0 is never taken (it holds the claims, and is where an app's data usually lives),
    nor an index that holds keys no test run put there."""

    CLAIM = "mazkira:test-run:redis-db:{}"
    USED = "mazkira:test-run:redis-dbs"  # the indexes test runs have held: theirs to empty
    SECONDS = 60

    def __init__(self, server: str) -> None:
        self.server = urlparse(server)
        self.preferred = int(self.server.path.strip("/") or 0)
        self.token = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        self.index: int | None = None
        self.used: list[int] = []  # for the run's summary
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def url_of(self, index: int) -> str:
        return self.server._replace(path=f"/{index}").geturl()

    def _client(self, index: int) -> Redis:
        return Redis.from_url(self.url_of(index), socket_timeout=5)

    def claim(self) -> str:
        """The URL of this run's index, claimed and emptied on first call."""
        if self.index is None:
            with self._client(0) as registry:
                self.index = self._first_free(registry)
            self.used.append(self.index)
            with self._client(self.index) as own:
                own.flushdb()  # what a run that died left behind
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew, daemon=True)
            self._renewer.start()
        return self.url_of(self.index)

    def _first_free(self, registry: Redis) -> int:
        count = self._databases(registry)
        others = [index for index in range(count - 1, 0, -1) if index != self.preferred]
        for index in [self.preferred, *others] if 0 < self.preferred < count else others:
            key = self.CLAIM.format(index)
            if not registry.set(key, self.token, nx=True, ex=self.SECONDS):
                continue
            with self._client(index) as candidate:
                ours = (
                    index == self.preferred
                    or bool(registry.sismember(self.USED, str(index)))
                    or candidate.dbsize() == 0
                )
            if ours:
                registry.sadd(self.USED, str(index))
                return index
            registry.delete(key)
        raise RuntimeError(
            f"every Redis database index of {self.url_of(0)} is held by another test run "
            "or holds data that is not a test run's"
        )

    @staticmethod
    def _databases(registry: Redis) -> int:
        try:
            found = registry.config_get("databases")
            assert isinstance(found, dict)
            return int(found["databases"])
        except (RedisError, KeyError, ValueError):  # CONFIG may be turned off
            return 16

    def _renew(self) -> None:
        key = self.CLAIM.format(self.index)
        with self._client(0) as registry:
            while not self._stop.wait(self.SECONDS / 4):
                with contextlib.suppress(RedisError):
                    if registry.get(key) in (None, self.token.encode()):
                        registry.set(key, self.token, ex=self.SECONDS)

    def release(self) -> None:
        """Empty the index and give it back (idempotent; also the atexit safety net)."""
        if self.index is None:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        key = self.CLAIM.format(self.index)
        with contextlib.suppress(RedisError):
            with self._client(self.index) as own:
                own.flushdb()
            with self._client(0) as registry:
                if registry.get(key) == self.token.encode():
                    registry.delete(key)
        self.index = None
