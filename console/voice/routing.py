"""Whom a call rings (ACD): the SIP server asks, this answers from the agent states.

A call to a business rings, one at a time for the business's ring seconds each, the secretaries
who serve it and are free now: its primary secretaries, or its backups when no primary is free;
the one idle longest first; not one already rung for this call while another is free (once all
have been, the round starts again). While nobody is free the call waits and asks again shortly;
past the business's wait limit it overflows (voicemail, the owner's phone, or a missed-call lead,
as the phone's side decides). Past the limit a secretary not yet rung is still tried, but the
call does not go round again.

Two statements whatever the agency's size: the business's settings, and its free secretaries in
order. On PostgreSQL the free rows are locked until the caller commits, so two calls deciding at
once with one secretary free do not both ring her: the second waits for the first's commit and,
finding her ringing by then, waits (SQLite's writing transactions are serialised anyway). The
caller decides and sets the chosen secretary ringing in one writing transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import dialect_of
from console.voice.states import AgentState
from models import Business, SecretaryAssignment, User
from models.agents import (
    DEFAULT_RING_SECONDS,
    DEFAULT_WAIT_LIMIT_SECONDS,
    AgentStatus,
    CallSettings,
)

# While nobody is free the SIP server asks again this often (seconds).
WAIT_SECONDS = 2


@dataclass(frozen=True)
class RouteDecision:
    action: Literal["ring", "wait", "overflow"]
    ring: tuple[uuid.UUID, ...]  # secretaries (user ids) to ring now
    ring_seconds: int  # ring this long, then ask again with attempt+1
    wait_seconds: int  # for "wait": ask again after this long


_SETTINGS = select(
    Business.id, CallSettings.ring_seconds, CallSettings.wait_limit_seconds
).outerjoin(CallSettings, CallSettings.business_id == Business.id)


async def decide(
    session: AsyncSession,
    *,
    business_id: uuid.UUID,
    attempt: int,
    rung: Sequence[uuid.UUID],
    waited_seconds: float,
    now: datetime,
) -> RouteDecision:
    """Whom to ring for a call to `business_id` now; see the module's docstring."""
    settings = (
        await session.execute(_SETTINGS.where(Business.id == business_id, Business.active))
    ).one_or_none()
    if settings is None:
        return RouteDecision("overflow", (), 0, 0)
    ring_seconds = settings.ring_seconds or DEFAULT_RING_SECONDS
    wait_limit = settings.wait_limit_seconds
    wait_limit = DEFAULT_WAIT_LIMIT_SECONDS if wait_limit is None else wait_limit
    serving, free = await _free_secretaries(session, business_id, now)
    if not serving:
        return RouteDecision("overflow", (), ring_seconds, 0)
    primaries = [user for user, backup in free if not backup]
    pool = primaries or [user for user, backup in free if backup]
    already = set(rung)
    fresh = [user for user in pool if user not in already]
    if fresh:
        return RouteDecision("ring", (fresh[0],), ring_seconds, 0)
    over = waited_seconds >= wait_limit
    if pool and not over:
        return RouteDecision("ring", (pool[0],), ring_seconds, 0)
    if over:
        return RouteDecision("overflow", (), ring_seconds, 0)
    left = max(1, min(WAIT_SECONDS, int(wait_limit - waited_seconds + 0.999)))
    return RouteDecision("wait", (), ring_seconds, left)


async def _free_secretaries(
    session: AsyncSession, business_id: uuid.UUID, now: datetime
) -> tuple[bool, list[tuple[uuid.UUID, bool]]]:
    """Whether any active secretary serves the business, and the free ones (user, is backup),
    the longest idle first: one statement, and a second only when none is free."""
    query = (
        select(SecretaryAssignment.user_id, SecretaryAssignment.is_backup)
        .join(User, User.id == SecretaryAssignment.user_id)
        .join(AgentStatus, AgentStatus.user_id == SecretaryAssignment.user_id)
        .where(
            SecretaryAssignment.business_id == business_id,
            User.active,
            User.role == "secretary",
            AgentStatus.state.in_((AgentState.AVAILABLE.value, AgentState.WRAP_UP.value)),
            AgentStatus.free_from <= now,
        )
        .order_by(AgentStatus.free_from, SecretaryAssignment.user_id)
    )
    if dialect_of(session) == "postgresql":
        query = query.with_for_update(of=AgentStatus)
    free = [(row.user_id, row.is_backup) for row in await session.execute(query)]
    if free:
        return True, free
    serving = await session.scalar(
        select(SecretaryAssignment.user_id)
        .join(User, User.id == SecretaryAssignment.user_id)
        .where(
            SecretaryAssignment.business_id == business_id,
            User.active,
            User.role == "secretary",
        )
        .limit(1)
    )
    return serving is not None, []
