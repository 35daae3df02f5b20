"""The webhook sender: every few seconds, turn new events into deliveries and send what is due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from console.channels.webhooks import TIMEOUT, SendReport, collect_deliveries, send_due_deliveries


async def deliver_webhooks(ctx: dict[str, Any]) -> SendReport:
    """Safe to run twice or on two workers at once: deliveries are unique per endpoint and
    event, and each is leased before it is sent."""
    db, settings = ctx["db"], ctx["settings"]
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await collect_deliveries(session, now=now)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        return await send_due_deliveries(
            db, http, now=now, allow_private=settings.webhook_allow_private
        )
