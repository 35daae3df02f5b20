"""Fixtures: real SQLite and PostgreSQL (migrated once per run, emptied after each test),
real Redis, and the app served in-process through httpx."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from asgi import create_app
from console.base.config import Settings, normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from models import Base
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = normalise_database_url(
    os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "test-secret-key-that-is-long-enough-for-signing"


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


async def create_database(url: str) -> None:
    """Make the test database when it is missing (TEST_DATABASE_URL may name a private one)."""
    target = make_url(url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            )
            if not found:
                await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await engine.dispose()


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
                need_service("PostgreSQL", POSTGRES_URL, 5432)
                await create_database(POSTGRES_URL)
                db = Database(POSTGRES_URL)
                async with db.engine.begin() as connection:
                    await connection.execute(text("DROP SCHEMA public CASCADE"))
                    await connection.execute(text("CREATE SCHEMA public"))
            await upgrade(db)
            self.open[backend] = db
        return self.open[backend]

    async def close(self) -> None:
        for db in self.open.values():
            await db.dispose()


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    registry = Databases(tmp_path_factory.mktemp("db"))
    yield registry
    await registry.close()


async def empty(db: Database) -> None:
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


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    need_service("Redis", REDIS_URL, 6379)
    client = Redis.from_url(REDIS_URL)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


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
