"""Whom a call rings (ACD): the SIP server asks, this answers from the agent states.

A call to a business rings, one at a time for the business's ring seconds each, the secretaries
who serve it and are free now: its primary secretaries, or its backups when no primary is free;
the one idle longest first; not one already rung for this call while another is free (once all
have been, the round starts again), and never one who declined it (her reject button). While
nobody is free the call waits and asks again shortly; past the business's wait limit it
overflows. Past the limit a secretary not yet rung is still tried, but the call does not go
round again. Where an overflow goes is the business's overflow
rule (console/voice/overflow.py): its action for the wait limit, or, when it has rules for calls
outside the covered hours or on a holiday, the action for such a call at once.

The queue keeps its order: a free secretary whom an older call, still waiting for one of her
businesses, may have is left for it (it asks again within seconds), oldest first across
businesses; a call she declined may not have her, so it keeps her from no newer call: she goes to
the oldest waiting call she has not declined. (Its place is its arrival: calls share one promise,
so arrival is also SLA order.)

No statement for most questions: the decision reads this process's roster of the businesses'
settings, who serves them, the agent states and the waiting calls (console/voice/roster.py),
reloaded from the database when stale (one question in a second pays its four statements; a
business with a rule for calls outside its hours or on holidays reads its row for its clock).
The database stays the truth on whom a call may ring: with `take=True` (a writing transaction)
the secretary chosen is set ringing by a conditional write (`states.ring`: only if she is free
now, and on PostgreSQL not while another decision holds her row, SKIP LOCKED), three
statements; if she is not, the next one is tried (at most three), else the call waits and asks
again. Two calls deciding at once with one secretary free, in one process or two, do not both
ring her. A waiting call's repeated question is asked with `take=False` in a read transaction
(nothing written), and "still nobody free" is answered from there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from console.sla.sla import clock_for
from console.voice import states
from console.voice.call_settings import BOUNDS
from console.voice.overflow import moment_rule
from console.voice.roster import Lineup, roster_of
from models import Business
from models.agents import DEFAULT_RING_SECONDS

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
    record: bool = False  # for "ring": the business records its calls
    announce: bool = False  # for "ring": and the caller hears its announcement first
    voicemail_seconds: int = 0  # for overflow_to "voicemail": the message's longest (0: default)


TRIES = 3
MAX_WAIT_LIMIT = BOUNDS["wait_limit_seconds"][1]
# A waiting call past its limit and this much is one the SIP server no longer asks about, and
# keeps nobody.
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
    declined: Sequence[uuid.UUID] = (),
) -> RouteDecision:
    """Whom to ring for a call to `business_id` now; see the module's docstring.

    With `take=True` (a writing transaction) a "ring" has set her ringing (`states.ring`);
    with `take=False` nothing is written (a read transaction may ask): a "ring" is then only
    what a writing transaction would choose now, and the caller asks again in one to ring her."""
    view = await roster_of(session).current(session, now)
    lineup = view.businesses.get(business_id)
    if lineup is None or not lineup.active:
        return RouteDecision("overflow", (), 0, 0)
    if lineup.closed or lineup.holiday:  # outside the hours or on a holiday: the rule at once
        business = await session.get_one(Business, business_id)
        action = moment_rule(lineup.closed or "", lineup.holiday or "", clock_for(business), now)
        if action:
            return RouteDecision(
                "overflow",
                (),
                0,
                0,
                action,
                lineup.other_business_id,
                voicemail_seconds=lineup.voicemail_max_seconds or 0,
            )
    free = view.free(lineup, now)
    arrived = now - timedelta(seconds=waited_seconds)
    taken = view.kept_for_older_calls([user for user, _ in free], arrived, now, STALE_AFTER)
    taken.update(declined)  # she said no to this call: not rung for it again
    for _ in range(TRIES):
        decision = _choose(lineup, free, rung, taken, waited_seconds)
        if decision.action == "overflow":
            return replace(
                decision,
                overflow_to=lineup.waiting or "",
                overflow_business=lineup.other_business_id,
                voicemail_seconds=lineup.voicemail_max_seconds or 0,
            )
        if decision.action == "ring" and lineup.record_calls:
            decision = replace(decision, record=True, announce=lineup.announces)
        if decision.action != "ring" or not take:
            return decision
        chosen = decision.ring[0]
        agent = view.agents[chosen]
        if await states.ring(session, chosen, now=now, business_id=business_id, opened=agent.since):
            return decision
        taken.add(chosen)  # rung by another call or process, or no longer free: the next one
    return RouteDecision("wait", (), decision.ring_seconds, WAIT_SECONDS)


def _choose(
    lineup: Lineup,
    free_now: Sequence[tuple[uuid.UUID, bool]],
    rung: Sequence[uuid.UUID],
    taken: set[uuid.UUID],
    waited_seconds: float,
) -> RouteDecision:
    ring_seconds = lineup.ring_seconds or DEFAULT_RING_SECONDS
    wait_limit = lineup.wait_limit
    if not lineup.serving:
        return RouteDecision("overflow", (), ring_seconds, 0)
    free = [(user, backup) for user, backup in free_now if user not in taken]
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
