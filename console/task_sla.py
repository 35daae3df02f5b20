"""Hand-offs have a promise too: the owner acknowledges within the business's task policy
(covered minutes), and finishes by the due time. The sweep raises an alert, once, for each
promise missed; acknowledging or finishing stands them down."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console import events
from console.db import after_commit
from console.errors import Conflict, NotFound
from console.scheduler import SweepAt
from console.sla import clock_for, insert_new_alerts
from console.tenancy import get_scoped
from models import Business, Role, Task, TaskPolicy, User

DEFAULT_ACKNOWLEDGE_MINUTES = 120


async def start_task_clock(session: AsyncSession, task: Task, business: Business) -> None:
    policy = await session.get(TaskPolicy, business.id)
    minutes = policy.acknowledge_minutes if policy else DEFAULT_ACKNOWLEDGE_MINUTES
    try:
        task.acknowledge_by = clock_for(business).add_covered_minutes(task.created_at, minutes)
    except ValueError:  # a business with no hours: no acknowledgement can be late
        task.acknowledge_by = None
    _set_next_alert(task, after=task.created_at)


def _set_next_alert(task: Task, *, after: datetime) -> None:
    moments = [task.due_at]
    if task.acknowledged_at is None and task.acknowledge_by is not None:
        moments.append(task.acknowledge_by)
    ahead = [m for m in moments if m > after]
    task.next_alert_at = min(ahead) if ahead and task.status == "open" else None


async def acknowledge_task(
    session: AsyncSession, user: User, task_id: str | uuid.UUID, *, now: datetime
) -> Task:
    """The assignee has seen it (who and when are kept); doing it twice changes nothing."""
    task = await get_scoped(session, user, Task, task_id)
    if user.id != task.assignee_id and user.role != Role.ADMIN:
        raise NotFound("Not found.")
    if task.status != "open":
        raise Conflict("This task was closed already.")
    if task.acknowledged_at is None:
        task.acknowledged_at = now
        # The due time stays watched even when it has passed already (its alert is keyed, so a
        # sweep that raised it before raises nothing again).
        _set_next_alert(task, after=task.created_at)
        await session.flush()
        if task.next_alert_at is not None:
            after_commit(session, SweepAt(task.next_alert_at))
        await events.record(
            session,
            task.business_id,
            "task.acknowledged",
            at=now,
            task_id=task.id,
            lead_id=task.lead_id,
            assignee_id=task.assignee_id,
        )
    return task


async def sweep_tasks(session: AsyncSession, *, now: datetime, limit: int = 1000) -> int:
    """Raise the task alerts that are due; returns how many are new."""
    due = list(
        (
            await session.scalars(
                select(Task)
                .where(Task.next_alert_at <= now)
                .order_by(Task.next_alert_at)
                .limit(limit)
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    for task in due:
        if task.status == "open":
            if task.acknowledged_at is None and task.acknowledge_by and task.acknowledge_by <= now:
                rows.append(_alert(task, "task_ack", task.acknowledge_by, now))
            if task.due_at <= now:
                rows.append(_alert(task, "task_due", task.due_at, now))
        _set_next_alert(task, after=now)
    await session.flush()
    raised = await insert_new_alerts(session, rows)
    await events.record_many(
        session,
        "alert.raised",
        [
            (r["business_id"], {"alert_id": r["id"], "lead_id": r["lead_id"], "level": r["level"]})
            for r in raised
        ],
        at=now,
    )
    return len(raised)


def _alert(task: Task, kind: str, moment: datetime, now: datetime) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "key": f"task:{task.id}:{kind}",
        "business_id": task.business_id,
        "lead_id": task.lead_id,
        "task_id": task.id,
        "kind": kind,
        "level": "breach",
        "percent": 100,
        "due_at": moment,
        "raised_at": now,
    }
