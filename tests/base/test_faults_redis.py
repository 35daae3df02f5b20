"""Fault: Redis restarts (empty) under two web processes that fan out through it.

Two `mazkira serve` processes share a SQLite file and a private `redis-server`
(tests/redis_server.py; the shared Redis is never touched), which carries their live events
and their web-form rate limits. Redis is killed, forms keep coming, and an empty Redis comes
back on the same port. Counted: every form is taken at once (the limits count in the process
while Redis is away; no 500), each is one lead, and every console, on either process, ends up
having shown every event once, in order, with no gap: the hubs resubscribe by themselves and
their consoles catch up on what was published while Redis was away."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.base.db import Database
from console.base.migrate import upgrade
from models import Business, Event, Lead
from tests.factories import PASSWORD, make_business, make_user
from tests.fault_tools import FormSender, LiveView, eventually, phone
from tests.live_client import Console
from tests.redis_server import PrivateRedis
from tests.servers import Server

PHASES = 3  # Redis up, Redis away, an empty Redis back
EACH = 6  # forms per phase


@pytest.fixture
async def agency(
    tmp_path: Path,
) -> AsyncIterator[tuple[list[Server], PrivateRedis, Database, Business]]:
    redis = PrivateRedis(tmp_path)
    redis.start()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    await upgrade(db)
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
        await make_user(session, "secretary", business, email="michal@example.test")
        await make_user(session, "admin", email="admin@example.test")
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}",
        "REDIS_URL": redis.url,
        "SECRET_KEY": "redis-restart-" + "k" * 40,
        "INTAKE_RATE_PER_KEY": "1000",
        "INTAKE_RATE_PER_ADDRESS": "1000",
    }
    servers = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        servers.append(Server(tmp_path / name, env))
        servers[-1].start()
    try:
        yield servers, redis, db, business
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        await db.dispose()
        for server in servers:
            print(server.log.read_text()[-3000:])


async def test_live_updates_and_intake_carry_on_through_a_redis_restart(
    agency: tuple[list[Server], PrivateRedis, Database, Business],
) -> None:
    (first, second), redis, db, business = agency
    michal = await Console(second).sign_in("michal@example.test", PASSWORD)
    admin = await Console(first).sign_in("admin@example.test", PASSWORD)
    views = {"michal on two": LiveView(michal), "admin on one": LiveView(admin)}
    await eventually(lambda: all(v.connects for v in views.values()), "every page connected")
    sender = FormSender(first.url)
    made: list[str] = []

    async def send_phase(phase: int) -> None:
        for n in range(phase * EACH, (phase + 1) * EACH):
            made.append(await sender.post("cohen", business.intake_key, f"redis-{n}", phone(n)))

    await send_phase(0)
    await eventually(lambda: all(v.has(set(made)) for v in views.values()), "seen while up")
    redis.stop()  # SIGTERM, the way it is restarted; nothing is saved
    await send_phase(1)
    redis.start()  # empty, on the same port
    await send_phase(2)

    for name, view in views.items():
        await eventually(partial(view.has, set(made)), f"{name} saw every lead")
    async with db.transaction(write=False) as session:
        per_form = dict(
            (
                await session.execute(
                    select(Lead.external_id, func.count()).group_by(Lead.external_id)
                )
            ).all()
        )
        seqs = list(await session.scalars(select(Event.seq).order_by(Event.seq)))
    assert per_form == {f"redis-{n}": 1 for n in range(PHASES * EACH)}
    assert len(set(made)) == PHASES * EACH
    assert sender.answers == {201: PHASES * EACH}, sender.bodies  # taken at once, every one
    for name, view in views.items():
        # Every event shown once, in order, none skipped.
        assert view.shown[str(business.id)] == seqs, (name, view.closes)
        # Its hub closed it (1012) once it had resubscribed; it came back from its cursor.
        assert 1012 in view.closes and view.connects >= 2, (name, view.closes)
    for server in (first, second):
        assert '" 500' not in server.log.read_text()
    for view in views.values():
        await view.stop()
    await michal.close()
    await admin.close()
