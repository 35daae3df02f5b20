"""Fixtures: real SQLite and PostgreSQL (migrated once per run, emptied after each test),
real Redis, and the app served in-process through httpx.

Each run has a PostgreSQL database and a Redis database index of its own (tests/own_databases.py),
so two runs on one machine never meet. TEST_DATABASE_URL names the PostgreSQL server (default
postgresql://postgres@127.0.0.1:5432; a database in it is not used: the run makes
`mazkira_test_<host>_<pid>_<random>` there and drops it at the end). TEST_REDIS_URL names the
Redis server and the index tried first (default redis://127.0.0.1:6379/15); the run claims a free
index (never 0) and empties only that one. Without the servers the tests that need them skip,
and under CI=true they fail instead."""

from __future__ import annotations

import atexit
import fcntl
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import argon2
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from asgi import create_app
from console.base.config import Settings, normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from console.people import passwords
from console.voice import roster
from models import Base
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio
from tests.own_databases import OwnPostgres, OwnRedisIndex

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_SERVER = normalise_database_url(
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432")
)
REDIS_SERVER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "test-secret-key-that-is-long-enough-for-signing"

OWN_POSTGRES = OwnPostgres(POSTGRES_SERVER)
OWN_REDIS = OwnRedisIndex(REDIS_SERVER)
# The safety net: the session's fixtures give both back, unless a teardown never ran.
atexit.register(OWN_POSTGRES.drop_all_at_exit)
atexit.register(OWN_REDIS.release)

# Passwords hashed in this process (the factories' people, every signing in through the test
# client) use argon2's cheapest parameters: at the real cost each one took a fifth of a second of
# CPU, thousands of times a run. Still argon2id, verified the same way; the servers the stories
# start as processes (tests/servers.py) keep the real cost. tests/people/test_passwords.py checks
# the real parameters.
passwords._hasher = argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST)


def answers(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def need_service(name: str, url: str, port: int) -> None:
    """Skip with a reason on a machine without the service; under CI=true, fail instead."""
    if answers(url, port):
        return
    message = f"{name} is not answering at {url}"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it")
    pytest.skip(message)


class Databases:
    """One migrated database per backend for the whole run."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.open: dict[str, Database] = {}

    async def get(self, backend: str) -> Database:
        if backend not in self.open:
            if backend == "sqlite":
                db = Database(f"sqlite+aiosqlite:///{self.tmp / 'test.db'}")
            else:
                need_service("PostgreSQL", POSTGRES_SERVER, 5432)
                db = Database(await OWN_POSTGRES.create())
            await upgrade(db)
            self.open[backend] = db
        return self.open[backend]

    async def close(self) -> None:
        for db in self.open.values():
            await db.dispose()


@pytest.fixture(scope="session")
async def own_postgres() -> AsyncIterator[OwnPostgres]:
    """This run's databases on the PostgreSQL server, dropped at the end of the session."""
    yield OWN_POSTGRES
    await OWN_POSTGRES.drop_all()


@pytest.fixture(scope="session")
async def databases(
    tmp_path_factory: pytest.TempPathFactory, own_postgres: OwnPostgres
) -> AsyncIterator[Databases]:
    registry = Databases(tmp_path_factory.mktemp("db"))
    yield registry
    await registry.close()


@pytest.fixture
async def private_postgres_url(own_postgres: OwnPostgres) -> str:
    """A new, empty PostgreSQL database for a test's own processes (`mazkira serve`, the CLI)."""
    need_service("PostgreSQL", POSTGRES_SERVER, 5432)
    return await own_postgres.create(private=True)


async def empty(db: Database) -> None:
    roster.forget(db.engine.sync_engine)  # routing's view of what is emptied here
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with db.engine.begin() as connection:
        if db.is_sqlite:
            for table in tables:
                await connection.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608
        else:
            quoted = ", ".join(f'"{table}"' for table in tables)
            await connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db(databases: Databases, backend: str) -> AsyncIterator[Database]:
    database = await databases.get(backend)
    try:
        yield database
    finally:
        database.after_commit.clear()
        await empty(database)


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, secret_key=SECRET)


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[object]:
    application = create_app(settings, db=db, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """This run's own Redis database index, claimed on first use and given back at the end."""
    need_service("Redis", REDIS_SERVER, 6379)
    yield OWN_REDIS.claim()
    OWN_REDIS.release()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture(autouse=True)
def browsers_take_turns(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """With two workers (pytest-xdist), the browser stories take turns: two Chromiums beside
    real SIP stacks on two cores starve a call's media (a story's call lost its audio whenever
    another story ran beside it). The lock file is this run's own, so other runs never wait."""
    if (
        request.node.get_closest_marker("browser") is None
        or "PYTEST_XDIST_WORKER" not in os.environ
    ):
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "browser-stories.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


@pytest.fixture
def free_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield port


# Local servers speaking the providers' formats (tests/fakes.py), one per test that asks.
@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
async def meta() -> AsyncIterator[FakeMeta]:
    async with FakeMeta() as fake:
        yield fake


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp() as fake:
        yield fake


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Which databases this run had, so a report of two runs side by side can be read."""
    used = [f"PostgreSQL {name}" for name in OWN_POSTGRES.used]
    used += [f"Redis database {index}" for index in OWN_REDIS.used]
    if used:
        terminalreporter.write_line("this run's own databases: " + ", ".join(used))
