"""Fault: twenty writers at once on one SQLite file, through two real `mazkira serve`
processes (two processes, so SQLite's own lock is contended, not only the in-process queue).

Three bursts of twenty requests at once: web forms, twenty secretaries claiming the same lead,
and twenty notes on it (then the same twenty notes again, as double clicks). Counted: no
answer is a 500 or mentions "database is locked"; every form is one lead, exactly one claim
wins and nineteen are told who holds the lead, every note is written once; the business's
event numbers are gapless and unique."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from console.base.db import Database
from console.base.migrate import upgrade
from models import Business, Event, Interaction, Lead, User
from tests.factories import PASSWORD, make_business, make_user
from tests.fault_tools import FormSender, phone
from tests.live_client import Console
from tests.servers import Server

WRITERS = 20


@pytest.fixture
async def agency(tmp_path: Path) -> AsyncIterator[tuple[list[Server], Database, Business]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    await upgrade(db)
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
        for n in range(WRITERS):
            await make_user(session, "secretary", business, email=f"s{n}@example.test")
    env = {"SECRET_KEY": "sqlite-writers-" + "k" * 40, "INTAKE_RATE_PER_ADDRESS": "0"}
    servers = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        servers.append(
            Server(tmp_path / name, {"DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}", **env})
        )
        servers[-1].start()
    try:
        yield servers, db, business
    finally:
        for server in servers:
            server.stop()
        await db.dispose()


def refused(answers: list[httpx.Response]) -> list[str]:
    """The answers no user should see: a 500, or SQLite's lock error in any form."""
    return [
        f"{a.status_code}: {a.text[:200]}"
        for a in answers
        if a.status_code >= 500 or "locked" in a.text.lower()
    ]


async def test_twenty_writers_at_once_on_sqlite_are_each_counted_once(
    agency: tuple[list[Server], Database, Business],
) -> None:
    servers, db, business = agency
    secretaries = [
        await Console(servers[n % 2]).sign_in(f"s{n}@example.test", PASSWORD)
        for n in range(WRITERS)
    ]

    # Twenty web forms at once, half through each process.
    senders = [FormSender(servers[n % 2].url) for n in range(WRITERS)]
    leads = await asyncio.gather(
        *(
            s.post("cohen", business.intake_key, f"crowd-{n}", phone(n))
            for n, s in enumerate(senders)
        )
    )
    answers = sum((s.answers for s in senders), Counter[int]())
    assert answers == {201: WRITERS}, [s.bodies for s in senders]
    lead = leads[0]

    # Twenty secretaries claim the same lead at once: one wins, nineteen are told who has it.
    claims = await asyncio.gather(*(s.post(f"/leads/{lead}/claim") for s in secretaries))
    assert refused(claims) == []
    assert Counter(a.status_code for a in claims) == {303: 1, 409: WRITERS - 1}
    winner = next(n for n, a in enumerate(claims) if a.status_code == 303)

    # Twenty notes at once by the one who holds it (the others may not write on her lead), then
    # the same twenty again (double clicks): twenty rows.
    keys = [uuid.uuid4().hex for _ in range(WRITERS)]
    holding = secretaries[winner]
    for _ in range(2):
        notes = await asyncio.gather(
            *(
                holding.post(f"/leads/{lead}/notes", notes=f"note {n}", request_key=keys[n])
                for n in range(WRITERS)
            )
        )
        assert refused(notes) == []
        assert [a.status_code for a in notes] == [303] * WRITERS

    async with db.transaction(write=False) as session:
        per_form = dict(
            (
                await session.execute(
                    select(Lead.external_id, func.count()).group_by(Lead.external_id)
                )
            ).all()
        )
        held = await session.get_one(Lead, uuid.UUID(lead))
        holder = await session.scalar(select(User.email).where(User.id == held.claimed_by_id))
        kinds = Counter(
            dict(
                (await session.execute(select(Event.kind, func.count()).group_by(Event.kind))).all()
            )
        )
        seqs = list(await session.scalars(select(Event.seq).order_by(Event.seq)))
        note_keys = list(
            await session.scalars(
                select(Interaction.request_key).where(Interaction.lead_id == held.id)
            )
        )
    assert per_form == {f"crowd-{n}": 1 for n in range(WRITERS)}
    assert holder == f"s{winner}@example.test"  # the one who was told she won
    assert kinds["lead.created"] == WRITERS and kinds["lead.claimed"] == 1
    assert sorted(k for k in note_keys if k) == sorted(keys)
    assert seqs == list(range(1, len(seqs) + 1))  # gapless and unique
    for console in secretaries:
        await console.close()
