"""The SLA sweep: cron every few seconds and, for each due time, an exact-time run. It also
passes unacknowledged on-call pages to the next person (console/tasks/paging.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.sla import sla
from console.tasks import paging, task_sla
from console.tasks.task_links import TaskLinks


async def sweep_sla(ctx: dict[str, Any]) -> int:
    """Raise the alerts that are due; safe to run twice or on two workers at once."""
    now = datetime.now(UTC)
    async with ctx["db"].transaction() as session:
        report = await sla.sweep(session, now=now)
        links = TaskLinks.of(ctx["settings"])
        tasks = await task_sla.sweep_tasks(session, now=now, links=links)
        passed = await paging.escalate_due(session, now=now, links=links)
    return report.raised + tasks + passed
