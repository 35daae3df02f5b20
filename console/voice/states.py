"""Agent states: whether a secretary can take a call now, and how long she spent in each state.

The SIP plumbing moves her through ringing, on a call and wrap-up; she moves herself between
available, break (with a reason) and offline from the top bar; her console's socket takes her
offline when the last one closes and back when one opens. Each change closes her open span and
opens the next, so the reports add spans, never replay changes.

Wrap-up ends by itself, computed rather than scheduled: the row says when it ends (`free_from`)
and every reader (routing, the wallboard, her top bar) treats a wrap-up past that moment as
available since then, and the spans were written whole when it began. Nothing has to run at
that moment, so no timer can be lost in a restart or race her own next change, and routing
sees her free to the second.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit, dialect_of
from console.base.errors import Conflict, Invalid
from console.live.events import LiveEvent
from console.voice.roster import Agent, AgentMoved, queue
from models import SecretaryAssignment
from models.agents import DEFAULT_WRAP_UP_SECONDS, AgentStateSpan, AgentStatus, CallSettings


class AgentState(enum.StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    BREAK = "break"
    OFFLINE = "offline"


# Why she is on a break: a short fixed list, so the reports can add them up.
BREAK_REASONS = ("rest", "meal", "meeting", "training", "other")
# What she may choose herself; the rest follow her calls and her console.
CHOSEN = (AgentState.AVAILABLE, AgentState.BREAK, AgentState.OFFLINE)
# Why she is offline: every console of hers closed, or she said so herself.
CLOSED = "closed"
CHOSEN_OFFLINE = "chosen"
# Where she comes back to when a console of hers opens again.
RESUMABLE = (AgentState.AVAILABLE, AgentState.BREAK)


@dataclass(frozen=True)
class Standing:
    """Her state as a reader sees it now (a wrap-up past its end reads as available)."""

    user_id: uuid.UUID
    state: AgentState
    since: datetime
    reason: str | None = None
    until: datetime | None = None  # the end of a wrap-up

    def seconds(self, now: datetime) -> int:
        return max(0, int((now - self.since).total_seconds()))


def standing_of(row: AgentStatus | None, user_id: uuid.UUID, now: datetime) -> Standing:
    if row is None:
        return Standing(user_id, AgentState.OFFLINE, now)
    state = AgentState(row.state)
    if state is AgentState.WRAP_UP and row.free_from is not None:
        if row.free_from <= now:
            return Standing(user_id, AgentState.AVAILABLE, row.free_from)
        return Standing(user_id, state, row.since, row.reason, row.free_from)
    return Standing(user_id, state, row.since, row.reason)


async def standings(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], *, now: datetime
) -> dict[uuid.UUID, Standing]:
    """Everyone's state now, in one statement (no row yet: offline)."""
    ids = list(user_ids)
    if not ids:
        return {}
    rows = (await session.scalars(select(AgentStatus).where(AgentStatus.user_id.in_(ids)))).all()
    by_user = {row.user_id: row for row in rows}
    return {user_id: standing_of(by_user.get(user_id), user_id, now) for user_id in ids}


async def set_state(
    session: AsyncSession,
    user_id: uuid.UUID,
    state: AgentState,
    *,
    now: datetime,
    reason: str | None = None,
    business_id: uuid.UUID | None = None,
) -> None:
    """Move her to `state` at `now`: her row, her spans, and an event for the wallboards.

    `business_id` is the call's business when the phone moves her (ringing, on a call, wrap-up):
    its wrap-up length applies. Without one, wrap-up takes the business of her last call, else
    the longest wrap-up among the businesses she serves."""
    state = AgentState(state)
    row = await _locked_row(session, user_id, now)
    before = standing_of(row, user_id, now)
    if before.state is state and before.reason == reason and state is not AgentState.WRAP_UP:
        return
    values: dict[str, object] = {"state": state.value, "since": now, "reason": reason}
    if business_id is not None:
        values["business_id"] = business_id
    spans: list[tuple[AgentState, str | None, datetime, datetime | None]] = [
        (state, reason, now, None)
    ]
    if state is AgentState.AVAILABLE:
        # Back from a ring she did not take, she keeps her place among the idle.
        kept = before.state is AgentState.RINGING and row is not None and row.free_from
        values["free_from"] = row.free_from if kept else now
    elif state is AgentState.WRAP_UP:
        seconds = await _wrap_up_seconds(session, user_id, business_id or row.business_id)
        ends = now + timedelta(seconds=seconds)
        values["free_from"] = ends
        spans = [(state, reason, now, ends), (AgentState.AVAILABLE, None, ends, None)]
    elif state is AgentState.OFFLINE:
        back = before.state if before.state in RESUMABLE else AgentState.AVAILABLE
        values["resume_state"] = back.value
        values["resume_reason"] = before.reason if back is AgentState.BREAK else None
    ends_later = row.free_from is not None and row.free_from > now
    ahead = row.state == AgentState.WRAP_UP.value and ends_later
    opened = min(row.since, now)  # read before the UPDATE below refreshes the row
    await session.execute(
        update(AgentStatus)
        .where(AgentStatus.user_id == user_id)
        .values(values)
        .execution_options(roster_follows=True)
    )
    free_from = cast(datetime | None, values.get("free_from", row.free_from))
    queue(session, AgentMoved(user_id, Agent(state.value, now, free_from)))
    await _close_spans(session, user_id, now, ahead=ahead, opened=opened)
    await session.execute(
        insert(AgentStateSpan.metadata.tables["agent_state_spans"]),
        [
            {"user_id": user_id, "state": s.value, "reason": r, "started_at": a, "ended_at": e}
            for s, r, a, e in spans
        ],
    )
    business = business_id or row.business_id
    if business is None:
        business = await session.scalar(
            select(SecretaryAssignment.business_id)
            .where(SecretaryAssignment.user_id == user_id)
            .order_by(SecretaryAssignment.business_id)
            .limit(1)
        )
    if business is not None:
        _tell(session, user_id, business, state)


async def ring(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    now: datetime,
    business_id: uuid.UUID,
    opened: datetime,
) -> bool:
    """Set her ringing for a call to `business_id` if she is free now: one conditional write,
    the truth whatever the roster (console/voice/roster.py) believed. False when she is not
    (another process rang her, she went on a break) or, on PostgreSQL, when another decision
    holds her row (passed over rather than waited for). `opened` is no later than her last
    change (the roster's `since` for her): her open spans are found from there."""
    table = AgentStatus.__table__
    free = and_(
        table.c.state.in_((AgentState.AVAILABLE.value, AgentState.WRAP_UP.value)),
        table.c.free_from <= now,
    )
    target = table.c.user_id == user_id
    if dialect_of(session) == "postgresql":
        held = select(table.c.user_id).where(target, free).with_for_update(skip_locked=True)
        target = table.c.user_id.in_(held.scalar_subquery())
    taken = await session.execute(
        update(AgentStatus)
        .where(target, free)
        .values(state=AgentState.RINGING.value, since=now, reason=None, business_id=business_id)
        .execution_options(synchronize_session=False, roster_follows=True)
    )
    if not cast(CursorResult[Any], taken).rowcount:
        return False
    # A free secretary's spans: the available one open since her last change, or a wrap-up's
    # pair whose available part is open (its end is past, since she is free).
    await _close_spans(session, user_id, now, ahead=False, opened=min(opened, now))
    await session.execute(
        insert(AgentStateSpan.metadata.tables["agent_state_spans"]),
        [{"user_id": user_id, "state": AgentState.RINGING.value, "started_at": now}],
    )
    # Her place among the idle (free_from) stays for when the ring ends unanswered.
    queue(session, AgentMoved(user_id, Agent(AgentState.RINGING.value, now, None)))
    _tell(session, user_id, business_id, AgentState.RINGING)
    return True


def _tell(
    session: AsyncSession, user_id: uuid.UUID, business: uuid.UUID, state: AgentState
) -> None:
    """Once the caller commits: the wallboards refresh (admins see every business, so one of
    hers reaches them all), and her own consoles redraw her top bar, which would otherwise show
    a change it did not make (her socket bringing her back, the phone) only at its next poll.
    Unnumbered, like presence: no row and no sequence number."""
    payload = {"user_id": str(user_id), "state": state.value}
    after_commit(session, LiveEvent(0, str(business), 0, "agent.state", payload))
    mine = {**payload, "to": [str(user_id)]}
    after_commit(session, LiveEvent(0, str(business), 0, "agent.own_state", mine))


async def choose(
    session: AsyncSession, user_id: uuid.UUID, raw_state: str, raw_reason: str, *, now: datetime
) -> None:
    """Her own choice from the top bar: available, a break with its reason, or offline."""
    try:
        state = AgentState(raw_state)
    except ValueError:
        raise Invalid("Choose available, break or offline.", field="state") from None
    if state not in CHOSEN:
        raise Invalid("Choose available, break or offline.", field="state")
    reason = raw_reason.strip() or None
    if state is AgentState.BREAK and reason not in BREAK_REASONS:
        raise Invalid("Choose why you are taking a break.", field="reason")
    if state is not AgentState.BREAK:
        # Offline by her own choice stays offline when a console of hers opens.
        reason = CHOSEN_OFFLINE if state is AgentState.OFFLINE else None
    row = await session.get(AgentStatus, user_id)
    now_state = standing_of(row, user_id, now).state
    if now_state in (AgentState.RINGING, AgentState.ON_CALL):
        raise Conflict("Your state changes once the call is over.")
    await set_state(session, user_id, state, now=now, reason=reason)


async def moves_with_console(session: AsyncSession, user_id: uuid.UUID, *, opened: bool) -> bool:
    """Whether a console of hers opening (or her last one closing) would change her state: one
    read, so that most page loads write nothing."""
    row = await session.get(AgentStatus, user_id)
    offline = row is None or row.state == AgentState.OFFLINE.value
    if opened:
        return offline and (row is None or row.reason != CHOSEN_OFFLINE)
    return not offline


async def went_offline(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    """Her last console closed."""
    row = await session.get(AgentStatus, user_id)
    if standing_of(row, user_id, now).state is not AgentState.OFFLINE:
        await set_state(session, user_id, AgentState.OFFLINE, now=now, reason=CLOSED)


async def came_online(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> None:
    """A console of hers opened: back to where she was before she went offline (a break stays
    a break), or available."""
    row = await session.get(AgentStatus, user_id)
    if standing_of(row, user_id, now).state is not AgentState.OFFLINE:
        return
    if row is not None and row.reason == CHOSEN_OFFLINE:
        return  # she said she is offline: opening a page does not make her available
    back = AgentState((row.resume_state if row else None) or AgentState.AVAILABLE)
    reason = row.resume_reason if row and back is AgentState.BREAK else None
    await set_state(session, user_id, back, now=now, reason=reason)


async def _locked_row(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> AgentStatus:
    """Her row, made offline if she has none, locked until the caller commits (PostgreSQL; on
    SQLite the writing transaction's BEGIN IMMEDIATE serialises it)."""
    postgres = dialect_of(session) == "postgresql"
    query = select(AgentStatus).where(AgentStatus.user_id == user_id)
    if postgres:
        query = query.with_for_update()
    query = query.execution_options(populate_existing=True)
    row = (await session.scalars(query)).one_or_none()
    if row is not None:
        return row
    table = AgentStatus.metadata.tables["agent_states"]
    make = (postgresql.insert(table) if postgres else sqlite.insert(table)).values(
        user_id=user_id, state=AgentState.OFFLINE.value, since=now
    )
    # Made offline, as the roster takes a secretary without a row (the next change queues hers).
    await session.execute(
        make.on_conflict_do_nothing(index_elements=["user_id"]),
        execution_options={"roster_follows": True},
    )
    return (await session.scalars(query)).one()


async def _close_spans(
    session: AsyncSession, user_id: uuid.UUID, now: datetime, *, ahead: bool, opened: datetime
) -> None:
    """End what is open at `now`: a wrap-up cut short (`ahead`: its end still to come) ends
    here, and the span written after it goes. Only spans written at her last change (from
    `opened`, her row's `since`) can be open, since every change closes what came before: the
    index on (user_id, started_at) then reads those two at most, not all her days' spans."""
    if ahead:
        await session.execute(
            delete(AgentStateSpan).where(
                AgentStateSpan.user_id == user_id, AgentStateSpan.started_at > now
            )
        )
    await session.execute(
        update(AgentStateSpan)
        .where(
            AgentStateSpan.user_id == user_id,
            AgentStateSpan.started_at >= opened,
            or_(AgentStateSpan.ended_at.is_(None), AgentStateSpan.ended_at > now),
        )
        .values(ended_at=now)
        .execution_options(synchronize_session=False)
    )


async def _wrap_up_seconds(
    session: AsyncSession, user_id: uuid.UUID, business_id: uuid.UUID | None
) -> int:
    if business_id is not None:
        seconds = await session.scalar(
            select(CallSettings.wrap_up_seconds).where(CallSettings.business_id == business_id)
        )
        return DEFAULT_WRAP_UP_SECONDS if seconds is None else seconds
    longest = await session.scalar(
        select(func.max(func.coalesce(CallSettings.wrap_up_seconds, DEFAULT_WRAP_UP_SECONDS)))
        .select_from(SecretaryAssignment)
        .outerjoin(CallSettings, CallSettings.business_id == SecretaryAssignment.business_id)
        .where(SecretaryAssignment.user_id == user_id)
    )
    return DEFAULT_WRAP_UP_SECONDS if longest is None else int(longest)
