"""Jobs: the same coroutine runs in-process (embedded) and on an arq worker (scaled)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import func, select

from console.base.config import Settings
from console.base.db import Database
from console.base.jobs import InProcessRunner, Periodic
from console.people.auth import start_session
from models import LoginFailure, UserSession
from tests.conftest import SECRET
from tests.factories import make_user
from workers.housekeeping import purge_sessions
from workers.settings import worker_settings


async def stale_rows(db: Database, settings: Settings) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=30)
    async with db.transaction() as session:
        user = await make_user(session, "admin")
        for _ in range(3):
            await start_session(session, settings, user, now=long_ago)
        await start_session(session, settings, user, now=datetime.now(UTC))
        session.add(LoginFailure(account="x@example.test", address="1.2.3.4", at=long_ago))


async def counts(db: Database) -> tuple[int, int]:
    async with db.transaction(write=False) as session:
        sessions = await session.scalar(select(func.count()).select_from(UserSession))
        failures = await session.scalar(select(func.count()).select_from(LoginFailure))
    return int(sessions or 0), int(failures or 0)


async def test_purge_sessions_called_directly_twice(db: Database) -> None:
    settings = Settings(database_url=db.url, secret_key=SECRET)
    await stale_rows(db, settings)
    ctx = {"db": db, "settings": settings}
    assert await purge_sessions(ctx) == 3
    assert await purge_sessions(ctx) == 0  # a retry changes nothing
    assert await counts(db) == (1, 0)


async def test_in_process_runner_runs_the_job_and_survives_its_failure(db: Database) -> None:
    settings = Settings(database_url=db.url, secret_key=SECRET)
    await stale_rows(db, settings)
    calls: list[str] = []

    async def broken(ctx: dict[str, object]) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    runner = InProcessRunner(
        {"db": db, "settings": settings},
        [Periodic(broken, every_seconds=3600), Periodic(purge_sessions, every_seconds=3600)],
    )
    runner.start()
    for _ in range(100):
        if (await counts(db))[0] == 1:
            break
        await asyncio.sleep(0.02)
    await runner.stop()
    assert calls == ["broken"] and await counts(db) == (1, 0)


async def test_arq_worker_runs_the_same_job_from_redis(
    db: Database, redis: Redis, redis_url: str
) -> None:
    settings = Settings(database_url=db.url, secret_key=SECRET, redis_url=redis_url)
    await stale_rows(db, settings)
    config = worker_settings(settings)
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await pool.enqueue_job("purge_sessions", _job_id="purge-test")
    await pool.enqueue_job("purge_sessions", _job_id="purge-test")  # same key: enqueued once

    async def startup(ctx: dict[str, object]) -> None:
        ctx["db"], ctx["settings"] = db, settings

    worker = Worker(
        functions=config["functions"],
        redis_pool=pool,
        burst=True,
        poll_delay=0,
        on_startup=startup,
        handle_signals=False,
    )
    await worker.main()
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    assert await counts(db) == (1, 0)
    await worker.close()
    await pool.aclose()


async def test_old_events_are_purged_and_recent_ones_kept(db: Database) -> None:
    from console.live import events
    from models import Event
    from tests.factories import make_business
    from workers.housekeeping import purge_events

    async with db.transaction() as session:
        business = await make_business(session)
        await events.record(
            session, business.id, "lead.created", at=datetime.now(UTC) - timedelta(days=3)
        )
        await events.record(session, business.id, "lead.created", at=datetime.now(UTC))
    settings = Settings(database_url=db.url, secret_key=SECRET)
    assert await purge_events({"db": db, "settings": settings}) == 1
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
