"""The inbox page at scale: `python -m bench.inbox [--leads N] [--db sqlite|postgres]`.

Seeds N leads (10% open) across 1,000 businesses, signs in a secretary who serves 10 of them,
and requests her first inbox page (50 rows) through the whole app in-process: middleware,
session, queries and template. Prints the server time's p50/p99 and the statements per page;
the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from asgi import create_app
from bench.seed import PASSWORD, count_leads, seed
from console.base.config import Settings, normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade

POSTGRES = os.environ.get(
    "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mazkira_bench"
)


async def prepare(
    kind: str, leads: int, businesses: int, *, secretary_open: int | None = None
) -> Database:
    """A database holding exactly this data set, reused between runs when it is already there
    (`secretary_open`: how many open leads the secretary sees, as `bench.seed.seed` takes it)."""
    shape = f"{leads}-{businesses}" + (f"-s{secretary_open}" if secretary_open is not None else "")
    if kind == "sqlite":
        path = Path(os.environ.get("BENCH_DIR", "/tmp")) / f"mazkira-bench-{shape}.db"
        db = Database(f"sqlite+aiosqlite:///{path}")
        await upgrade(db)
        if await count_leads(db) == leads:
            return db
        await db.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        db = Database(f"sqlite+aiosqlite:///{path}")
    else:
        url = postgres_url(leads, businesses, secretary_open=secretary_open)
        await create_database(url)
        db = Database(url)
        await upgrade(db)
        if await count_leads(db) == leads:
            return db
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
    await upgrade(db)
    started = time.perf_counter()
    await seed(db, businesses=businesses, leads=leads, secretary_open=secretary_open)
    if db.is_sqlite:
        async with db.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
    else:
        async with db.engine.connect() as connection:
            await connection.execute(text("COMMIT"))
            await connection.execute(text("VACUUM ANALYZE"))
    print(f"seeded {leads} leads in {time.perf_counter() - started:.0f} s", flush=True)
    return db


def postgres_url(leads: int, businesses: int, *, secretary_open: int | None = None) -> str:
    """`mazkira_bench` holds the million leads; other sizes have databases of their own, so
    `bench.scale` can keep 10,000 beside them."""
    url = make_url(normalise_database_url(POSTGRES))
    if (leads, businesses, secretary_open) != (1_000_000, 1_000, None):
        suffix = f"_s{secretary_open}" if secretary_open is not None else ""
        url = url.set(database=f"{url.database}_{leads}_{businesses}{suffix}")
    return url.render_as_string(hide_password=False)


async def create_database(url: str) -> None:
    """The benchmark's own PostgreSQL database (never the tests'), made when missing."""
    target = make_url(url)
    engine = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        exists = await connection.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        )
        if not exists:
            await connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    await engine.dispose()


def bench_app(db: Database) -> Starlette:
    """The whole console on this database, without its jobs, for requests in this process."""
    settings = Settings(database_url=db.url, secret_key="bench-" + "x" * 40)
    return create_app(settings, db=db, run_jobs=False)


async def sign_in(client: httpx.AsyncClient, email: str = "secretary@bench.test") -> None:
    """Sign in as the seeded secretary (or another seeded user); the client keeps the cookie."""
    login = await client.get("/login")
    token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
    signed = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert signed.status_code == 303, signed.text


async def measure(db: Database, requests: int) -> dict[str, Any]:
    app = bench_app(db)
    statements: list[str] = []

    def record(*args: object) -> None:
        if not str(args[2]).startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(str(args[2]))

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await sign_in(client)
            for _ in range(5):  # warm caches and the session's last-seen stamp
                await client.get("/inbox")
            times = []
            event.listen(db.engine.sync_engine, "before_cursor_execute", record)
            for _ in range(requests):
                statements.clear()
                started = time.perf_counter()
                page = await client.get("/inbox")
                times.append((time.perf_counter() - started) * 1000)
                assert page.status_code == 200 and 'class="lead-row' in page.text
            event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "statements": len(statements),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--businesses", type=int, default=1_000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    db = await prepare(args.db, args.leads, args.businesses)
    try:
        result = await measure(db, args.requests)
    finally:
        await db.dispose()
    print(json.dumps({"db": args.db, "leads": args.leads, "businesses": args.businesses, **result}))


if __name__ == "__main__":
    asyncio.run(main())
