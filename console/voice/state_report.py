"""Time in each agent state, per secretary and day, for the agency's reports (payroll, occupancy).

The spans of the period are read in one statement and cut here: at the period's edges, at now
(for the span still open) and at each local midnight (Israel time, the agency's), so a shift
from 22:00 to 02:00 counts two hours on each day, on DST nights too.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.voice.states import AgentState
from models import User
from models.agents import AgentStateSpan

AGENCY_ZONE = ZoneInfo("Asia/Jerusalem")
# Handling a call: the share of her signed-in time (without breaks) spent on these is occupancy.
HANDLING = (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP)


@dataclass(frozen=True)
class StateDay:
    """One secretary's day: seconds per state (offline left out)."""

    user_id: uuid.UUID
    name: str
    day: date
    seconds: dict[str, int] = field(default_factory=dict)

    def of(self, state: str) -> int:
        return self.seconds.get(state, 0)

    @property
    def signed_in(self) -> int:
        """Seconds in any state but offline: the time she worked, breaks included."""
        return sum(seconds for state, seconds in self.seconds.items() if state != "offline")

    @property
    def occupancy(self) -> float | None:
        """Handling calls (ringing, talking, wrap-up) over that plus available time, in %."""
        handling = sum(self.of(state) for state in HANDLING)
        ready = handling + self.of(AgentState.AVAILABLE)
        return round(100 * handling / ready, 1) if ready else None


Span = tuple[uuid.UUID, str, datetime, datetime | None]  # user, state, started, ended


def split_by_day(
    spans: Iterable[Span], start: datetime, end: datetime, now: datetime, zone: ZoneInfo
) -> dict[tuple[uuid.UUID, date], dict[str, int]]:
    """Each span cut to [start, end) and at now, then at every local midnight of `zone`."""
    found: dict[tuple[uuid.UUID, date], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for user_id, state, began, ended in spans:
        left = max(began, start)
        right = min(ended or now, end, now)
        while left < right:
            local = left.astimezone(zone)
            midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
            cut = min(right, midnight.astimezone(start.tzinfo))
            found[(user_id, local.date())][state] += (cut - left).total_seconds()
            left = cut
    return {
        key: {state: round(seconds) for state, seconds in states.items()}
        for key, states in found.items()
    }


async def time_in_states(
    session: AsyncSession,
    first: date,
    last: date,
    *,
    now: datetime,
    zone: ZoneInfo = AGENCY_ZONE,
) -> list[StateDay]:
    """Every secretary's seconds per state on each day from `first` to `last` (local days of
    the agency), in one statement; by name, then day."""
    start = datetime.combine(first, time(0), tzinfo=zone).astimezone(now.tzinfo)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(now.tzinfo)
    rows = await session.execute(
        select(
            AgentStateSpan.user_id,
            AgentStateSpan.state,
            AgentStateSpan.started_at,
            AgentStateSpan.ended_at,
            User.name,
        )
        .join(User, User.id == AgentStateSpan.user_id)
        .where(
            AgentStateSpan.started_at < min(end, now),
            or_(AgentStateSpan.ended_at.is_(None), AgentStateSpan.ended_at > start),
            AgentStateSpan.state != AgentState.OFFLINE.value,
        )
    )
    names: dict[uuid.UUID, str] = {}
    spans: list[Span] = []
    for user_id, state, began, ended, name in rows:
        names[user_id] = name
        spans.append((user_id, state, began, ended))
    days = split_by_day(spans, start, end, now, zone)
    found = [
        StateDay(user_id, names[user_id], day, seconds) for (user_id, day), seconds in days.items()
    ]
    found.sort(key=lambda row: (row.name, str(row.user_id), row.day))
    return found
