"""Whom a call rings (ACD): the SIP server asks, this answers from the agent states.

A call to a business rings, one at a time for the business's ring seconds each, the secretaries
who serve it and are free now: its primary secretaries, or its backups when no primary is free;
the one idle longest first; not one already rung for this call while another is free (once all
have been, the round starts again). While nobody is free the call waits and asks again shortly;
past the business's wait limit it overflows. Past the limit a secretary not yet rung is still
tried, but the call does not go round again. Where an overflow goes is the business's overflow
rule (console/voice/overflow.py): its action for the wait limit, or, when it has rules for calls
outside the covered hours or on a holiday, the action for such a call at once.

The queue keeps its order: a free secretary whom an older call, still waiting for one of her
businesses, may have is left for it (it asks again within seconds), oldest first across
businesses. (Its place is its arrival: calls share one promise, so arrival is also SLA order.)

One statement whatever the agency's size: the business's settings and overflow rule, whether anyone
serves it and its free secretaries in order (one more, the business's hours, only for a business
with a rule for calls outside its hours or on holidays); when someone is free, one more for the
older waiting calls. On PostgreSQL one more locks the secretary chosen until the caller commits,
unless another decision holds her (SKIP LOCKED): two calls deciding at once with one secretary free
do not both ring her; the second passes her over for the next free one (at most three tries), else
it waits and asks again. SQLite's writing transactions are serialised anyway. The caller decides and
sets the chosen secretary ringing in one writing transaction; a waiting call's repeated question is
first asked in a read transaction (`take=False`, nothing locked), and "still nobody free" is
answered from there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Row, and_, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import dialect_of
from console.sla.sla import clock_for
from console.voice.call_settings import BOUNDS
from console.voice.overflow import moment_rule
from console.voice.states import AgentState
from models import Business, SecretaryAssignment, User
from models.agents import (
    DEFAULT_RING_SECONDS,
    DEFAULT_WAIT_LIMIT_SECONDS,
    AgentStatus,
    CallSettings,
)
from models.on_call import OverflowRule
from models.voice import Call

# While nobody is free the SIP server asks again this often (seconds).
WAIT_SECONDS = 2


@dataclass(frozen=True)
class RouteDecision:
    action: Literal["ring", "wait", "overflow"]
    ring: tuple[uuid.UUID, ...]  # secretaries (user ids) to ring now
    ring_seconds: int  # ring this long, then ask again with attempt+1
    wait_seconds: int  # for "wait": ask again after this long
    overflow_to: str = ""  # for "overflow": the rule's action ("" a call-back lead)
    overflow_business: uuid.UUID | None = None  # for overflow_to "business": whose team


# The free secretaries of the business (primary or backup, since when free); joined to the
# business's row so one statement also brings its settings and whether anyone serves it.
_SERVING = (
    select(SecretaryAssignment.user_id)
    .join(User, User.id == SecretaryAssignment.user_id)
    .where(
        SecretaryAssignment.business_id == bindparam("business"),
        User.active,
        User.role == "secretary",
    )
)
_FREE_NOW = and_(
    AgentStatus.state.in_((AgentState.AVAILABLE.value, AgentState.WRAP_UP.value)),
    AgentStatus.free_from <= bindparam("now"),
)
_FREE = (
    _SERVING.add_columns(SecretaryAssignment.is_backup, AgentStatus.free_from)
    .join(AgentStatus, AgentStatus.user_id == SecretaryAssignment.user_id)
    .where(_FREE_NOW)
    .subquery("free")
)
_ASK = (
    select(
        CallSettings.ring_seconds,
        CallSettings.wait_limit_seconds,
        _SERVING.exists().label("serving"),
        _FREE.c.user_id,
        _FREE.c.is_backup,
        OverflowRule.waiting,
        OverflowRule.closed,
        OverflowRule.holiday,
        OverflowRule.other_business_id,
    )
    .select_from(Business)
    .outerjoin(CallSettings, CallSettings.business_id == Business.id)
    .outerjoin(OverflowRule, OverflowRule.business_id == Business.id)
    .outerjoin(_FREE, true())
    .where(Business.id == bindparam("business"), Business.active)
    .order_by(_FREE.c.free_from, _FREE.c.user_id)
)
# PostgreSQL: the chosen one locked if she is free and no other decision holds her; one that
# does is passed over rather than waited for (when many calls wait and she comes free, they
# all pick her: waiting in line for her row would hold a connection each).
_TAKE = (
    select(AgentStatus.user_id)
    .where(AgentStatus.user_id == bindparam("user"), _FREE_NOW)
    .with_for_update(skip_locked=True)
)
TRIES = 3
MAX_WAIT_LIMIT = BOUNDS["wait_limit_seconds"][1]
# Older calls still waiting, per free secretary who serves their business: the youngest of them
# per business, with its wait limit (a waiting call past its limit and a little is one the SIP
# server no longer asks about, and keeps nobody).
_OLDER_WAITING = (
    select(
        SecretaryAssignment.user_id,
        func.max(Call.arrived_at).label("youngest"),
        CallSettings.wait_limit_seconds,
    )
    .join(Call, Call.business_id == SecretaryAssignment.business_id)
    .outerjoin(CallSettings, CallSettings.business_id == Call.business_id)
    .where(
        SecretaryAssignment.user_id.in_(bindparam("free", expanding=True)),
        Call.state == "waiting",
        Call.direction == "in",
        Call.arrived_at < bindparam("mine"),
        Call.arrived_at > bindparam("oldest"),
    )
    .group_by(SecretaryAssignment.user_id, Call.business_id, CallSettings.wait_limit_seconds)
)
STALE_AFTER = timedelta(seconds=3 * WAIT_SECONDS)


async def decide(
    session: AsyncSession,
    *,
    business_id: uuid.UUID,
    attempt: int,
    rung: Sequence[uuid.UUID],
    waited_seconds: float,
    now: datetime,
    take: bool = True,
) -> RouteDecision:
    """Whom to ring for a call to `business_id` now; see the module's docstring.

    With `take=False` nothing is locked (a read transaction may ask): a "ring" is then only
    what a writing transaction would choose now, and the caller asks again in one to ring her."""
    rows = (await session.execute(_ASK, {"business": business_id, "now": now})).all()
    if not rows:
        return RouteDecision("overflow", (), 0, 0)
    first = rows[0]
    if first.closed or first.holiday:  # outside the hours or on a holiday: the rule at once
        business = await session.get_one(Business, business_id)
        action = moment_rule(first.closed, first.holiday, clock_for(business), now)
        if action:
            return RouteDecision("overflow", (), 0, 0, action, first.other_business_id)
    taken = await _kept_for_older_calls(session, rows, now - timedelta(seconds=waited_seconds), now)
    for _ in range(TRIES):
        decision = _choose(rows, rung, taken, waited_seconds)
        if decision.action == "overflow":
            return replace(
                decision,
                overflow_to=first.waiting or "",
                overflow_business=first.other_business_id,
            )
        if decision.action != "ring" or not take or dialect_of(session) != "postgresql":
            return decision  # SQLite: the writing transaction already holds the database
        chosen = decision.ring[0]
        if await session.scalar(_TAKE, {"user": chosen, "now": now}) is not None:
            return decision
        taken.add(chosen)  # another call is ringing her, or about to: the next one
    return RouteDecision("wait", (), decision.ring_seconds, WAIT_SECONDS)


async def _kept_for_older_calls(
    session: AsyncSession, rows: Sequence[Row[Any]], arrived: datetime, now: datetime
) -> set[uuid.UUID]:
    """The free secretaries an older waiting call may have first (the queue keeps its order,
    oldest first, across businesses): one statement, only when someone is free."""
    free = [row.user_id for row in rows if row.user_id]
    if not free:
        return set()
    oldest = now - timedelta(seconds=MAX_WAIT_LIMIT) - STALE_AFTER
    kept = set()
    found = await session.execute(
        _OLDER_WAITING,
        {"free": free, "mine": arrived - timedelta(milliseconds=1), "oldest": oldest},
    )
    for user_id, youngest, limit in found:
        limit = DEFAULT_WAIT_LIMIT_SECONDS if limit is None else limit
        if youngest > now - timedelta(seconds=limit) - STALE_AFTER:
            kept.add(user_id)
    return kept


def _choose(
    rows: Sequence[Row[Any]],
    rung: Sequence[uuid.UUID],
    taken: set[uuid.UUID],
    waited_seconds: float,
) -> RouteDecision:
    first = rows[0]
    ring_seconds = first.ring_seconds or DEFAULT_RING_SECONDS
    wait_limit = first.wait_limit_seconds
    wait_limit = DEFAULT_WAIT_LIMIT_SECONDS if wait_limit is None else wait_limit
    if not first.serving:
        return RouteDecision("overflow", (), ring_seconds, 0)
    free = [
        (row.user_id, row.is_backup) for row in rows if row.user_id and row.user_id not in taken
    ]
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
