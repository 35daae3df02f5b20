"""The notification sender: every few seconds, send what is due, each row exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.notify import Senders, SendReport, send_due_notifications


async def send_notifications(ctx: dict[str, Any]) -> SendReport:
    """Send the due notifications; safe to run twice or on two workers at once."""
    senders = ctx.get("senders")
    if senders is None:  # arq's startup makes them; the in-process runner's first run does
        senders = ctx["senders"] = Senders(ctx["settings"])
    return await send_due_notifications(ctx["db"], senders, now=datetime.now(UTC))
