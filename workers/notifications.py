"""The notification sender: every few seconds, send what is due, each row exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.channels.notify import Senders, SendReport, send_due_notifications

# A run sends batch after batch while there is something to send (a burst of breach notices
# must not wait 50 per cron tick), up to this many batches; the rest waits for the next run.
BATCHES_PER_RUN = 20


async def send_notifications(ctx: dict[str, Any]) -> SendReport:
    """Send the due notifications; safe to run twice or on two workers at once."""
    senders = ctx.get("senders")
    if senders is None:  # arq's startup makes them; the in-process runner's first run does
        senders = ctx["senders"] = Senders(ctx["settings"], ctx["db"])
    report = SendReport()
    for _ in range(BATCHES_PER_RUN):
        batch = await send_due_notifications(ctx["db"], senders, now=datetime.now(UTC))
        report.sent += batch.sent
        report.retried += batch.retried
        report.failed += batch.failed
        if batch == SendReport():  # nothing left, or another worker has leased the rest
            break
    return report
