"""Fault: the web process restarts while consoles have their sockets open and leads keep coming.

A real `mazkira serve` (embedded: SQLite, in-process hub) is stopped with SIGTERM and started
again on the same port in the middle of a stream of web-form leads. The consoles are pages
that reconnect and say hello with their cursor, as `static/app.js` does; the sender retries
what was refused, as a site or a provider does. Counted: every lead is in the database once,
and every page ends up having shown every event of its businesses once, in order, with no gap."""

from __future__ import annotations

import asyncio
import itertools
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
from tests.servers import Server

LEADS = 40
RESTART_AFTER = 12  # leads taken before the restart
SENDERS = 4


@pytest.fixture
async def agency(tmp_path: Path) -> AsyncIterator[tuple[Server, Database, dict[str, Business]]]:
    """Two businesses, a secretary on each and an admin, on a served SQLite console."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    await upgrade(db)
    async with db.transaction() as session:
        businesses = {slug: await make_business(session, slug=slug) for slug in ("cohen", "levi")}
        await make_user(session, "secretary", businesses["cohen"], email="michal@example.test")
        await make_user(session, "secretary", businesses["levi"], email="dana@example.test")
        await make_user(session, "admin", email="admin@example.test")
    server = Server(
        tmp_path,
        {"SECRET_KEY": "web-restart-" + "k" * 40, "INTAKE_RATE_PER_ADDRESS": "0"},
    )
    server.start()
    try:
        yield server, db, businesses
    finally:
        server.stop()
        await db.dispose()
        print(server.log.read_text()[-3000:])


async def test_consoles_reconnect_after_a_restart_and_miss_nothing(
    agency: tuple[Server, Database, dict[str, Business]],
) -> None:
    server, db, businesses = agency
    consoles = {
        name: await Console(server).sign_in(f"{name}@example.test", PASSWORD)
        for name in ("michal", "dana", "admin")
    }
    # Michal has two tabs open; each page is its own socket with its own cursor.
    views = {
        "michal-1": LiveView(consoles["michal"]),
        "michal-2": LiveView(consoles["michal"]),
        "dana": LiveView(consoles["dana"]),
        "admin": LiveView(consoles["admin"]),
    }
    sees = {
        "michal-1": {"cohen"},
        "michal-2": {"cohen"},
        "dana": {"levi"},
        "admin": {"cohen", "levi"},
    }
    await eventually(lambda: all(v.connects for v in views.values()), "every page connected")

    sender = FormSender(server.url)
    slugs = itertools.cycle(businesses)
    plan = [(n, next(slugs)) for n in range(LEADS)]
    made: dict[str, str] = {}  # lead id -> business slug
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def send() -> None:
        while not queue.empty():
            n, slug = queue.get_nowait()
            key = businesses[slug].intake_key
            made[await sender.post(slug, key, f"restart-{n}", phone(n))] = slug

    senders = [asyncio.create_task(send()) for _ in range(SENDERS)]
    await eventually(lambda: len(made) >= RESTART_AFTER, "leads before the restart")
    assert await asyncio.to_thread(server.stop) in (0, -15)
    await asyncio.sleep(0.3)  # the senders meet a closed port meanwhile
    await asyncio.to_thread(server.start)
    await asyncio.gather(*senders)

    for name, view in views.items():
        wanted = {lead for lead, slug in made.items() if slug in sees[name]}
        await eventually(partial(view.has, wanted), f"{name} saw every lead")

    # Each lead once in the database, one per form sent; each answered 201 once (a form whose
    # answer was lost to the restart is answered 200 on its retry, and is the same lead).
    async with db.transaction(write=False) as session:
        rows = list(
            await session.execute(select(Lead.external_id, func.count()).group_by(Lead.external_id))
        )
        seqs: dict[str, list[int]] = {}
        for owner, seq in await session.execute(
            select(Event.business_id, Event.seq).order_by(Event.seq)
        ):
            seqs.setdefault(str(owner), []).append(seq)
    assert len(rows) == LEADS and {n for _, n in rows} == {1}
    assert len(made) == LEADS
    assert sender.answers[201] + sender.answers[200] == LEADS, sender.answers
    assert set(sender.answers) <= {200, 201, 503}, sender.bodies
    assert sum(sender.errors.values()) > 0, "no post met the closed port: the restart was missed"

    for name, view in views.items():
        assert view.connects >= 2 and view.closes[0] == 1012, (name, view.closes)
        for slug in ("cohen", "levi"):
            key = str(businesses[slug].id)
            expected = seqs.get(key, []) if slug in sees[name] else []
            # Every event of the business shown once, in order, none skipped.
            assert view.shown.get(key, []) == expected, (name, slug, view.dropped)
        assert sum(view.leads.values()) >= len([s for s in made.values() if s in sees[name]])
    print(
        {name: (v.connects, v.dropped, dict(v.leads.most_common(1))) for name, v in views.items()}
    )
    for view in views.values():
        await view.stop()
    for console in consoles.values():
        await console.close()
