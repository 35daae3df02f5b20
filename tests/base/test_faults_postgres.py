"""Fault: PostgreSQL restarts under a running console.

A private cluster (tests/postgres_server.py; the shared one is never touched) is stopped the
way a service manager restarts it, under a real `mazkira serve`. While it is down a page, the
intake form and `/healthz` answer 503 with a clear message at once (not 500, not a request
left hanging); once it is back they work again without the console being restarted. Web forms
sent meanwhile are retried by their sender, as a site or provider does: counted, each is one
lead, none lost and none doubled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

import console.base.db
from console.base.db import Database
from console.base.migrate import upgrade
from models import Business, Event, Lead
from tests.factories import PASSWORD, make_business, make_user
from tests.fault_tools import FormSender, eventually, phone
from tests.live_client import Console
from tests.postgres_server import PrivatePostgres
from tests.servers import Server

BEFORE, DURING = 10, 10  # forms sent before the outage, and while the database is down
QUICK = 5.0  # seconds: a refusal while the database is down comes well within this


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    cluster = PrivatePostgres()
    try:
        cluster.start()
        cluster.create_database()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
async def console_on(
    postgres: PrivatePostgres, tmp_path: Path
) -> AsyncIterator[tuple[Server, Database, Business]]:
    db = Database(postgres.url)
    await upgrade(db)
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
        await make_user(session, "secretary", business, email="michal@example.test")
    server = Server(
        tmp_path,
        {
            "DATABASE_URL": postgres.url,
            "SECRET_KEY": "postgres-restart-" + "k" * 40,
            "INTAKE_RATE_PER_ADDRESS": "0",
        },
    )
    server.start()
    try:
        yield server, db, business
    finally:
        server.stop()
        await db.dispose()
        print(server.log.read_text()[-4000:])


async def test_a_connection_idle_past_a_restart_is_pinged_and_replaced(
    postgres: PrivatePostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pooled connections are pinged only when they have lain idle (`PING_AFTER`): one used a
    moment ago goes straight to work (under load, every one), one idle across a restart is
    found dead by its ping and replaced, and the transaction never sees it."""
    monkeypatch.setattr(console.base.db, "PING_AFTER", 0.3)
    pings = 0
    ping = AsyncAdapt_asyncpg_connection.ping

    def counted(connection: AsyncAdapt_asyncpg_connection) -> None:
        nonlocal pings
        pings += 1
        ping(connection)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    db = Database(postgres.url)

    async def one() -> int:
        async with db.transaction(write=False) as session:
            return int(await session.scalar(text("SELECT 1")) or 0)

    try:
        assert [await one(), await one(), await one()] == [1, 1, 1]
        assert pings == 0  # a new connection, then the same one just given back
        await asyncio.sleep(0.4)
        assert await one() == 1
        assert pings == 1
        await asyncio.to_thread(postgres.stop, "fast")
        await asyncio.to_thread(postgres.start)
        await asyncio.sleep(0.4)
        assert await one() == 1  # the dead one answered its ping with an error: replaced
        assert pings == 2
    finally:
        await db.dispose()


async def timed(request: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_requests_answer_503_while_postgresql_is_down_and_recover_by_themselves(
    postgres: PrivatePostgres, console_on: tuple[Server, Database, Business]
) -> None:
    server, db, business = console_on
    michal = await Console(server).sign_in("michal@example.test", PASSWORD)
    sender = FormSender(server.url)
    made = [
        await sender.post("cohen", business.intake_key, f"pg-{n}", phone(n)) for n in range(BEFORE)
    ]
    assert sender.answers == {201: BEFORE}

    await asyncio.to_thread(postgres.stop, "fast")  # every session of the console is ended
    refusals: list[tuple[str, httpx.Response, float]] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=QUICK * 2) as anyone:
        for what, request in (
            ("healthz", anyone.get("/healthz")),
            ("page", michal.http.get("/inbox", timeout=QUICK * 2)),
            ("fragment", michal.http.get("/inbox", headers={"HX-Request": "true"})),
            (
                "form",
                anyone.post(
                    "/intake/cohen/form",
                    headers={"X-Intake-Key": business.intake_key},
                    json={"phone": phone(BEFORE), "external_id": f"pg-{BEFORE}"},
                ),
            ),
        ):
            refusals.append((what, *await timed(request)))
    for what, response, seconds in refusals:
        assert response.status_code == 503, (what, response.status_code, response.text[:500])
        assert seconds < QUICK, (what, seconds)
    by_name = {what: response for what, response, _ in refusals}
    assert by_name["healthz"].json() == {"database": "down", "redis": "disabled"}
    assert by_name["form"].json()["error"] and by_name["form"].headers["Retry-After"]
    assert "מסד הנתונים אינו עונה כרגע" in by_name["page"].text  # her language, a whole page
    assert "<html" in by_name["page"].text and by_name["page"].headers["Retry-After"]
    assert by_name["fragment"].headers["HX-Retarget"] == "#flash"

    # Forms keep coming while it is down; their senders retry until they are taken.
    outage = [
        asyncio.create_task(sender.post("cohen", business.intake_key, f"pg-{n}", phone(n)))
        for n in range(BEFORE, BEFORE + DURING)
    ]
    await eventually(lambda: sender.answers[503] >= DURING, "forms refused while down")
    await asyncio.to_thread(postgres.start)  # the console is not restarted

    made += await asyncio.gather(*outage)
    async with httpx.AsyncClient(base_url=server.url) as anyone:
        assert (await anyone.get("/healthz")).json() == {"database": "ok", "redis": "disabled"}
    assert (await michal.http.get("/inbox")).status_code == 200  # her session survived too
    repeats = [
        await sender.post("cohen", business.intake_key, f"pg-{n}", phone(n))
        for n in range(BEFORE + DURING)
    ]
    assert repeats == made  # each form sent again finds its lead

    async with db.transaction(write=False) as session:
        per_form = dict(
            (
                await session.execute(
                    select(Lead.external_id, func.count()).group_by(Lead.external_id)
                )
            ).all()
        )
        created = await session.scalar(
            select(func.count()).select_from(Event).where(Event.kind == "lead.created")
        )
    assert per_form == {f"pg-{n}": 1 for n in range(BEFORE + DURING)}
    assert created == BEFORE + DURING and len(set(made)) == BEFORE + DURING
    assert sender.answers[201] == BEFORE + DURING, sender.answers
    assert sender.answers[200] == BEFORE + DURING  # the repeats
    assert set(sender.answers) == {200, 201, 503}, sender.bodies
    assert '" 500' not in server.log.read_text()  # no request answered 500
    await michal.close()
