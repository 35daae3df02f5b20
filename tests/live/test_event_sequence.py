"""Event sequence numbers: each business's events are numbered 1, 2, 3… without gaps or
repeats, however many transactions number them at once (the consoles rely on it)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from console.live import events
from models import Business, Event
from tests.conftest import Databases
from tests.factories import make_business

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def test_two_batches_over_the_same_businesses_never_deadlock(databases: Databases) -> None:
    """T1 numbers an event of A and holds it; T2 numbers a batch of B and A; then T1 numbers one
    of B. Had T2 locked B before waiting for A, each would wait for the other (PostgreSQL would
    kill one); T2 takes its rows in id order, so it waits for A before touching B."""
    db = await databases.get("postgres")
    async with db.transaction() as session:
        first, second = await make_business(session), await make_business(session)
    a, b = sorted((first.id, second.id))
    t1_holds_a, t2_waiting = asyncio.Event(), asyncio.Event()

    async def t1() -> None:
        async with db.transaction() as session:
            await events.record(session, a, "test.one", at=NOW)
            t1_holds_a.set()
            await t2_waiting.wait()
            await asyncio.sleep(0.3)  # T2 is now blocked on its lock
            await events.record(session, b, "test.one", at=NOW)

    async def t2() -> None:
        await t1_holds_a.wait()
        async with db.transaction() as session:
            t2_waiting.set()
            await events.record_many(session, "test.many", [(b, {}), (a, {}), (b, {})], at=NOW)

    await asyncio.wait_for(asyncio.gather(t1(), t2()), 10)
    async with db.transaction(write=False) as session:
        rows = (await session.execute(select(Event.business_id, Event.seq))).all()
        seqs = {
            business: sorted(seq for owner, seq in rows if owner == business) for business in (a, b)
        }
        assert seqs == {a: [1, 2], b: [1, 2, 3]}
        last = dict((await session.execute(select(Business.id, Business.event_seq))).all())
        assert (last[a], last[b]) == (2, 3)
