"""Whom a call rings: the routing rules over real agent states, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.people.accounts import link_user
from console.voice import routing
from console.voice.routing import RouteDecision
from console.voice.states import AgentState, set_state
from models import Business, User
from models.agents import CallSettings
from models.voice import Call
from tests.factories import counting, make_business, make_user

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def secretary(
    session: AsyncSession, business: Business, *, backup: bool = False, name: str = ""
) -> User:
    user = await make_user(session, "secretary", name=name or f"s-{uuid.uuid4().hex[:6]}")
    await link_user(session, user, business, backup=backup)
    return user


async def decide(
    db: Database,
    business: Business,
    *,
    now: datetime,
    attempt: int = 1,
    rung: Sequence[uuid.UUID] = (),
    waited: float = 0,
) -> RouteDecision:
    async with db.transaction() as session:
        return await routing.decide(
            session,
            business_id=business.id,
            attempt=attempt,
            rung=rung,
            waited_seconds=waited,
            now=now,
        )


async def move(db: Database, user: User, state: AgentState, now: datetime, **kw: object) -> None:
    async with db.transaction() as session:
        await set_state(session, user.id, state, now=now, **kw)  # type: ignore[arg-type]


async def test_primary_before_backup_and_the_longest_idle_first(db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        session.add(CallSettings(business_id=shop.id, ring_seconds=15, wait_limit_seconds=60))
        dana = await secretary(session, shop)
        rina = await secretary(session, shop)
        backup = await secretary(session, shop, backup=True)
    await move(db, backup, AgentState.AVAILABLE, at(0))  # idle longest, but a backup
    await move(db, rina, AgentState.AVAILABLE, at(10))
    await move(db, dana, AgentState.AVAILABLE, at(20))
    first = await decide(db, shop, now=at(30))
    assert first == RouteDecision("ring", (rina.id,), 15, 0)
    # Rina did not answer: the ring timed out, she keeps her place; Dana is next.
    await move(db, rina, AgentState.RINGING, at(30))
    await move(db, rina, AgentState.AVAILABLE, at(45))
    second = await decide(db, shop, now=at(45), attempt=2, rung=[rina.id], waited=15)
    assert second.ring == (dana.id,)
    # Both primaries rung: the round starts again with the longest idle primary, not the backup.
    third = await decide(db, shop, now=at(60), attempt=3, rung=[rina.id, dana.id], waited=30)
    assert third.ring == (rina.id,)
    # No primary free: the backup rings.
    await move(db, rina, AgentState.BREAK, at(61), reason="meal")
    await move(db, dana, AgentState.ON_CALL, at(61))
    assert (await decide(db, shop, now=at(62))).ring == (backup.id,)


async def test_break_wrap_up_offline_ringing_and_on_call_are_not_rung(db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        session.add(CallSettings(business_id=shop.id, wrap_up_seconds=30))
        people = [await secretary(session, shop) for _ in range(5)]
        never = await secretary(session, shop)  # never opened a console: offline
    on_break, wrapping, gone, ringing, talking = people
    for n, person in enumerate(people):
        await move(db, person, AgentState.AVAILABLE, at(n))
    await move(db, on_break, AgentState.BREAK, at(10), reason="rest")
    await move(db, wrapping, AgentState.ON_CALL, at(10))
    await move(db, wrapping, AgentState.WRAP_UP, at(20), business_id=shop.id)
    await move(db, gone, AgentState.OFFLINE, at(10))
    await move(db, ringing, AgentState.RINGING, at(10))
    await move(db, talking, AgentState.ON_CALL, at(10))
    waiting = await decide(db, shop, now=at(25), waited=5)
    assert waiting.action == "wait" and waiting.ring == () and waiting.wait_seconds > 0
    assert never.id not in waiting.ring
    # Her wrap-up ends by itself, 30 s on: she is free then, with nothing written.
    assert (await decide(db, shop, now=at(49.9))).action == "wait"
    assert (await decide(db, shop, now=at(50))).ring == (wrapping.id,)


async def test_waiting_then_overflow_past_the_limit(db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        session.add(CallSettings(business_id=shop.id, wait_limit_seconds=20))
        busy = await secretary(session, shop)
    await move(db, busy, AgentState.ON_CALL, at(0))
    waited = await decide(db, shop, now=at(1), waited=1)
    assert waited.action == "wait" and 1 <= waited.wait_seconds <= routing.WAIT_SECONDS
    assert (await decide(db, shop, now=at(19), waited=19)).wait_seconds == 1
    assert (await decide(db, shop, now=at(20), waited=20)).action == "overflow"
    # Past the limit a secretary never rung for this call is still tried, but not again.
    await move(db, busy, AgentState.WRAP_UP, at(20), business_id=shop.id)
    free_at = at(20 + 30)
    assert (await decide(db, shop, now=free_at, waited=50)).ring == (busy.id,)
    again = await decide(db, shop, now=free_at, waited=65, rung=[busy.id])
    assert again.action == "overflow"


async def test_a_business_nobody_serves_overflows_at_once(db: Database) -> None:
    async with db.transaction() as session:
        lonely = await make_business(session)
        other = await make_business(session)
        await secretary(session, other)
    assert (await decide(db, lonely, now=at(0))).action == "overflow"


async def test_two_calls_at_once_one_secretary_free_the_second_waits(db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        only = await secretary(session, shop)
    await move(db, only, AgentState.AVAILABLE, at(0))

    async def call() -> RouteDecision:
        async with db.transaction() as session:
            decision = await routing.decide(
                session, business_id=shop.id, attempt=1, rung=(), waited_seconds=0, now=at(5)
            )
            await asyncio.sleep(0.05)  # the ring is set a moment later, in the same transaction
            for user_id in decision.ring:
                await set_state(session, user_id, AgentState.RINGING, now=at(5))
            return decision

    first, second = await asyncio.gather(call(), call())
    assert sorted(d.action for d in (first, second)) == ["ring", "wait"]


async def test_deciding_is_a_fixed_number_of_statements(db: Database, steady_roster: None) -> None:
    """From the roster in memory: "wait" reads nothing; "ring" is her conditional write, her
    open span closed and the ringing one opened (three); the roster's load, once a second at
    most, four whatever the agency's size."""
    async with db.transaction() as session:
        shops = [await make_business(session) for _ in range(3)]
        people = [await secretary(session, shops[n % 3], backup=n % 4 == 0) for n in range(12)]
    for n, person in enumerate(people):
        await move(db, person, AgentState.AVAILABLE, at(n))
    for n, shop in enumerate(shops):
        with counting(db) as statements:
            decision = await decide(db, shop, now=at(20), rung=[p.id for p in people[:5]], waited=3)
        assert decision.action == "ring"
        loaded = 4 if n == 0 else 0  # the assignments changed since the roster was loaded
        assert len(statements) == loaded + 3, statements
    for person in people:
        await move(db, person, AgentState.BREAK, at(30), reason="meal")
    with counting(db) as statements:
        assert (await decide(db, shops[0], now=at(31))).action == "wait"
    assert statements == []


async def test_an_older_waiting_call_keeps_its_place_across_businesses(db: Database) -> None:
    async with db.transaction() as session:
        plumbing = await make_business(session)
        clinic = await make_business(session)
        session.add(CallSettings(business_id=clinic.id, wait_limit_seconds=60))
        michal = await secretary(session, plumbing)
        await link_user(session, michal, clinic)
        older = Call(
            business_id=clinic.id,
            sip_call_id="older@carrier",
            direction="in",
            state="waiting",
            arrived_at=at(0),
        )
        stale = Call(  # its waiting ran out long ago and nobody asks about it any more
            business_id=plumbing.id,
            sip_call_id="stale@carrier",
            direction="in",
            state="waiting",
            arrived_at=at(-3600),
        )
        session.add_all([older, stale])
    await move(db, michal, AgentState.ON_CALL, at(0))
    await move(db, michal, AgentState.WRAP_UP, at(5), business_id=plumbing.id)
    free_at = at(5 + 30)
    # A newer call to the plumbing while the clinic's caller waits: Michal is kept for him.
    newer = await decide(db, plumbing, now=free_at, waited=2)
    assert newer.action == "wait"
    # The clinic's call asks again: it rings her.
    assert (await decide(db, clinic, now=free_at, waited=35)).ring == (michal.id,)
    await move(db, michal, AgentState.AVAILABLE, free_at)  # rung out: she keeps her place
    # Once it no longer waits (answered, or gone), the newer call has her.
    async with db.transaction() as session:
        await session.execute(update(Call).where(Call.id == older.id).values(state="answered"))
    assert (await decide(db, plumbing, now=free_at, waited=2)).ring == (michal.id,)


async def test_a_call_she_declined_does_not_keep_her_from_a_newer_one(db: Database) -> None:
    """An older call she declined is not rung to her again, so while it waits it keeps her for
    nobody: a newer call of her businesses has her (the oldest she has not declined); an older
    call she has not declined keeps its place, until she declines it too."""
    async with db.transaction() as session:
        plumbing = await make_business(session)
        clinic = await make_business(session)
        michal = await secretary(session, plumbing)
        await link_user(session, michal, clinic)
        declined = Call(
            business_id=clinic.id,
            sip_call_id="declined@carrier",
            direction="in",
            state="waiting",
            arrived_at=at(0),
            declined=[michal.id.hex],
        )
        session.add(declined)
    await move(db, michal, AgentState.AVAILABLE, at(1))
    async with db.transaction() as session:  # the clinic's call asks again: not her
        again = await routing.decide(
            session,
            business_id=clinic.id,
            attempt=3,
            rung=[michal.id],
            declined=[michal.id],
            waited_seconds=10,
            now=at(10),
        )
    assert again.action == "wait"
    # The plumbing's newer call: she is free, and the older call may not have her.
    assert (await decide(db, plumbing, now=at(10), waited=2)).ring == (michal.id,)
    await move(db, michal, AgentState.AVAILABLE, at(30))  # rung out: free again
    # Another older call, one she has not declined: the newer call waits behind it.
    async with db.transaction() as session:
        older = Call(
            business_id=clinic.id,
            sip_call_id="older@carrier",
            direction="in",
            state="waiting",
            arrived_at=at(5),
            declined=[],
        )
        session.add(older)
    assert (await decide(db, plumbing, now=at(31), waited=2)).action == "wait"
    # She declines that one too (its row changes through the ORM; the roster follows it).
    async with db.transaction() as session:
        row = await session.get_one(Call, older.id)
        row.declined = [michal.id.hex]
    assert (await decide(db, plumbing, now=at(32), waited=3)).ring == (michal.id,)


async def test_setting_a_state_is_four_statements(db: Database) -> None:
    """What the phone does in every routing answer: her row (locked), its update, her open span
    closed and the next one opened (a wrap-up and the available after it in one insert)."""
    async with db.transaction() as session:
        shop = await make_business(session)
        dana = await secretary(session, shop)
    await move(db, dana, AgentState.AVAILABLE, at(0))
    for n, state in enumerate((AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)):
        with counting(db) as statements:
            await move(db, dana, state, at(10 + n), business_id=shop.id)
        extra = 1 if state is AgentState.WRAP_UP else 0  # its length, from the settings
        assert len(statements) == 4 + extra, statements
