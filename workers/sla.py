"""The SLA sweep: cron every few seconds and, for each due time, an exact-time run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.sla import sla
from console.tasks import task_sla
from console.tasks.task_links import TaskLinks


async def sweep_sla(ctx: dict[str, Any]) -> int:
    """Raise the alerts that are due; safe to run twice or on two workers at once."""
    now = datetime.now(UTC)
    async with ctx["db"].transaction() as session:
        report = await sla.sweep(session, now=now)
        tasks = await task_sla.sweep_tasks(session, now=now, links=TaskLinks.of(ctx["settings"]))
    return report.raised + tasks
