"""Jobs that keep the database tidy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.live import events
from console.people import auth


async def purge_sessions(ctx: dict[str, Any]) -> int:
    """Forget ended sessions and stale failed sign-ins; running it twice changes nothing more."""
    async with ctx["db"].transaction() as session:
        return await auth.purge_expired(session, ctx["settings"], now=datetime.now(UTC))


async def purge_events(ctx: dict[str, Any]) -> int:
    """Drop live events older than the replay window; consoles that old reload instead."""
    async with ctx["db"].transaction() as session:
        return await events.purge_old_events(session, now=datetime.now(UTC))
