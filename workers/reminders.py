"""Follow-up reminders: quotes on their days, A/B/C customers once a period."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.tasks.reminders import FollowupReport
from console.tasks.reminders import remind_followups as write_followups


async def remind_followups(ctx: dict[str, Any], *, now: datetime | None = None) -> FollowupReport:
    """Write the follow-ups that are due; safe to run twice or on two workers at once."""
    async with ctx["db"].transaction() as session:
        return await write_followups(session, now=now or datetime.now(UTC))
