"""The roster routing decides from (console/voice/roster.py): kept current by this process's own
commits, reloaded after writes it does not follow, and a stale view (another process's
changes) made harmless by the conditional write that sets the chosen secretary ringing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.people.accounts import link_user
from console.voice import roster, routing
from console.voice.routing import RouteDecision
from console.voice.states import AgentState, set_state, standings
from models import Business, SecretaryAssignment, User
from models.agents import CallSettings
from tests.factories import counting, make_business, make_user

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
async def other(db: Database) -> AsyncIterator[Database]:
    """A second web process's view of the same database: its own engine, so its own roster."""
    second = Database(db.url)
    try:
        yield second
    finally:
        roster.forget(second.engine.sync_engine)
        await second.dispose()


async def secretary(session: AsyncSession, business: Business, *, backup: bool = False) -> User:
    user = await make_user(session, "secretary", name=f"s-{uuid.uuid4().hex[:6]}")
    await link_user(session, user, business, backup=backup)
    return user


async def ask(
    db: Database,
    business: Business,
    now: datetime,
    *,
    rung: Sequence[uuid.UUID] = (),
    take: bool = True,
) -> RouteDecision:
    async with db.transaction(write=take) as session:
        return await routing.decide(
            session,
            business_id=business.id,
            attempt=1,
            rung=rung,
            waited_seconds=0,
            now=now,
            take=take,
        )


async def move(db: Database, user: User, state: AgentState, now: datetime, **kw: object) -> None:
    async with db.transaction() as session:
        await set_state(session, user.id, state, now=now, **kw)  # type: ignore[arg-type]


async def state_of(db: Database, user: User, now: datetime) -> AgentState:
    async with db.transaction(write=False) as session:
        return (await standings(session, [user.id], now=now))[user.id].state


async def two_free(db: Database) -> tuple[Business, User, User]:
    async with db.transaction() as session:
        shop = await make_business(session)
        dana = await secretary(session, shop)
        rina = await secretary(session, shop)
    await move(db, dana, AgentState.AVAILABLE, at(0))  # idle longest
    await move(db, rina, AgentState.AVAILABLE, at(1))
    return shop, dana, rina


async def test_a_stale_view_never_rings_someone_no_longer_free(
    db: Database, other: Database, steady_roster: None
) -> None:
    shop, dana, rina = await two_free(db)
    assert (await ask(other, shop, at(10), take=False)).ring == (dana.id,)  # its view loaded
    await move(db, dana, AgentState.BREAK, at(11), reason="meal")  # in the first process
    # The second process still sees Dana free: its conditional write finds her on a break, and
    # the call rings Rina instead.
    assert (await ask(other, shop, at(12))).ring == (rina.id,)
    assert await state_of(db, dana, at(12)) is AgentState.BREAK
    assert await state_of(db, rina, at(12)) is AgentState.RINGING
    # Rina ringing is its own write; Dana it still believes free, and finds not: the call waits.
    assert (await ask(other, shop, at(13))).action == "wait"
    assert await state_of(db, dana, at(13)) is AgentState.BREAK


async def test_two_processes_deciding_at_once_ring_one_secretary_once(
    db: Database, other: Database, steady_roster: None
) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        only = await secretary(session, shop)
    await move(db, only, AgentState.AVAILABLE, at(0))
    for process in (db, other):  # both views see her free
        assert (await ask(process, shop, at(1), take=False)).ring == (only.id,)

    async def call(process: Database) -> RouteDecision:
        async with process.transaction() as session:
            decision = await routing.decide(
                session, business_id=shop.id, attempt=1, rung=(), waited_seconds=0, now=at(5)
            )
            await asyncio.sleep(0.05)  # the rest of the answer, in the same transaction
            return decision

    first, second = await asyncio.gather(call(db), call(other))
    assert sorted(d.action for d in (first, second)) == ["ring", "wait"]
    assert await state_of(db, only, at(5)) is AgentState.RINGING


async def test_a_secretary_freed_in_another_process_is_rung_once_its_view_is_refreshed(
    db: Database, other: Database, monkeypatch: pytest.MonkeyPatch, steady_roster: None
) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        dana = await secretary(session, shop)
    await move(db, dana, AgentState.ON_CALL, at(0))
    assert (await ask(other, shop, at(1), take=False)).action == "wait"
    await move(db, dana, AgentState.AVAILABLE, at(2))
    assert (await ask(other, shop, at(3))).action == "wait"  # not yet seen there
    monkeypatch.setattr(roster, "REFRESH_SECONDS", 0.0)  # its refresh comes round:
    assert (await ask(other, shop, at(4))).action == "wait"  # in a task of its own
    await roster.roster_of_database(other).refreshed()
    assert (await ask(other, shop, at(5))).ring == (dana.id,)


async def test_this_process_s_own_changes_show_at_the_next_question(
    db: Database, steady_roster: None
) -> None:
    shop, dana, rina = await two_free(db)
    assert (await ask(db, shop, at(10), take=False)).ring == (dana.id,)
    loads = roster.roster_of_database(db).loads
    await move(db, dana, AgentState.BREAK, at(11), reason="rest")  # followed, not reloaded
    assert (await ask(db, shop, at(12), take=False)).ring == (rina.id,)
    assert roster.roster_of_database(db).loads == loads
    # A setting and an assignment changed: reloaded at the next question.
    async with db.transaction() as session:
        session.add(CallSettings(business_id=shop.id, ring_seconds=7))
    assert (await ask(db, shop, at(13), take=False)).ring_seconds == 7
    async with db.transaction() as session:
        await session.execute(
            delete(SecretaryAssignment).where(SecretaryAssignment.user_id == rina.id)
        )
    assert (await ask(db, shop, at(14), take=False)).action == "wait"
    async with db.transaction() as session:
        await session.execute(update(Business).where(Business.id == shop.id).values(active=False))
    assert (await ask(db, shop, at(15), take=False)).action == "overflow"
    assert roster.roster_of_database(db).loads == loads + 3


async def test_a_rolled_back_change_is_not_applied(db: Database, steady_roster: None) -> None:
    shop, dana, _ = await two_free(db)
    assert (await ask(db, shop, at(10), take=False)).ring == (dana.id,)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await set_state(session, dana.id, AgentState.BREAK, now=at(11), reason="rest")
            raise RuntimeError("the rest of the request failed")
    assert (await ask(db, shop, at(12))).ring == (dana.id,)


async def test_a_change_committed_while_the_roster_loads_is_kept(
    db: Database, monkeypatch: pytest.MonkeyPatch, steady_roster: None
) -> None:
    shop, dana, rina = await two_free(db)
    loading = roster.load

    async def slow_load(session: AsyncSession, now: datetime) -> roster.View:
        view = await loading(session, now)  # read before Dana's break below commits
        await move(db, dana, AgentState.BREAK, at(11), reason="meal")
        return view

    monkeypatch.setattr(roster, "load", slow_load)
    assert (await ask(db, shop, at(12), take=False)).ring == (rina.id,)
    view = roster.roster_of_database(db).view
    assert view is not None and view.agents[dana.id].state == AgentState.BREAK.value


async def test_a_quiet_roster_reads_one_number_and_loads_another_process_s_change(
    db: Database, other: Database, monkeypatch: pytest.MonkeyPatch, steady_roster: None
) -> None:
    shop, dana, rina = await two_free(db)
    assert (await ask(other, shop, at(10), take=False)).ring == (dana.id,)  # its view loaded
    kept = roster.roster_of_database(other)
    monkeypatch.setattr(roster, "REFRESH_SECONDS", 0.0)  # every question starts a look

    async def look() -> list[str]:
        """A question (no statement of its own) and the look it starts: their statements."""
        with counting(other) as statements:
            await ask(other, shop, at(11), take=False)
            await kept.refreshed()
        return statements

    await look()  # what was written before it first looked is loaded,
    await look()  # and once more, as after any write it sees
    loads = kept.loads
    quiet = await look()
    assert len(quiet) == 1 and "roster_changes" in quiet[0], quiet
    assert kept.loads == loads
    # A business renamed (and its events numbered) is nothing routing reads: still one number.
    async with db.transaction() as session:
        await session.execute(update(Business).where(Business.id == shop.id).values(name="New"))
    assert len(await look()) == 1 and kept.loads == loads
    # Dana's break, written by the first process: the second loads it at its next look.
    await move(db, dana, AgentState.BREAK, at(12), reason="meal")
    assert len(await look()) == 5 and kept.loads == loads + 1
    assert (await ask(other, shop, at(13), take=False)).ring == (rina.id,)
    await kept.refreshed()
