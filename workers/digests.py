"""The owners' morning digests: daily, and weekly on Sunday."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.reports.digests import DigestReport, queue_digests


async def send_digests(ctx: dict[str, Any], *, now: datetime | None = None) -> DigestReport:
    """Queue the digests that are due (the notification job sends them); safe to run twice or
    on two workers at once."""
    settings = ctx.get("settings")
    public_url = settings.public_url if settings is not None else None
    async with ctx["db"].transaction() as session:
        return await queue_digests(session, now=now or datetime.now(UTC), public_url=public_url)
