"""Hand-offs have a promise too: the owner acknowledges within the business's task policy
(covered minutes), and finishes by the due time. The sweep raises an alert, once, for each
promise missed, and reminds the assignee, once, when the due time is near and when it has
passed; acknowledging or finishing stands them down. Who acknowledged, from where, and how long
it took in covered minutes are kept."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit
from console.base.errors import Conflict, Invalid, NotFound
from console.base.scheduler import SweepAt
from console.business.reminder_policy import read_policy
from console.live import events
from console.people.audit import Actor, record_change
from console.people.tenancy import get_scoped
from console.sla.sla import clock_for, insert_new_alerts
from console.tasks import task_notices
from console.tasks.task_links import TaskLinks
from models import Alert, Business, Role, Task, TaskPolicy, User
from models.base import new_id

DEFAULT_ACKNOWLEDGE_MINUTES = 120
DEFAULT_REMIND_BEFORE_DUE_MINUTES = 60
MAX_ACKNOWLEDGE_MINUTES = 60 * 24 * 30  # covered minutes, as for a lead's first response
MAX_REMIND_BEFORE_DUE_MINUTES = 60 * 24 * 7
VIA = ("console", "link", "whatsapp")  # where an acknowledgement came from


async def start_task_clock(session: AsyncSession, task: Task, business: Business) -> None:
    """The task's promises: a hand-off is acknowledged within the policy's covered minutes
    (the reminders the system writes itself, with no creator, have no such promise), and the
    assignee is reminded the policy's minutes before the due time if the business wants it."""
    policy = await session.get(TaskPolicy, business.id)
    minutes = policy.acknowledge_minutes if policy else DEFAULT_ACKNOWLEDGE_MINUTES
    task.acknowledge_by = None
    # A business with no hours has no acknowledgement that can be late.
    with contextlib.suppress(ValueError):
        if task.created_by_id is not None:
            task.acknowledge_by = clock_for(business).add_covered_minutes(task.created_at, minutes)
    before = policy.remind_before_due_minutes if policy else DEFAULT_REMIND_BEFORE_DUE_MINUTES
    remind_at = task.due_at - timedelta(minutes=before)
    wanted = read_policy(policy).task_reminders  # the same row keeps both policies
    task.remind_at = remind_at if wanted and remind_at > task.created_at else None
    _set_next_alert(task, after=task.created_at)


async def task_policy_of(session: AsyncSession, business: Business) -> TaskPolicy:
    """The business's task policy, or the defaults (not stored) when it has set none."""
    policy = await session.get(TaskPolicy, business.id)
    if policy is None:
        policy = TaskPolicy(
            business_id=business.id,
            acknowledge_minutes=DEFAULT_ACKNOWLEDGE_MINUTES,
            remind_before_due_minutes=DEFAULT_REMIND_BEFORE_DUE_MINUTES,
            settings={},
        )
    return policy


def check_task_policy(acknowledge_minutes: int, remind_before_due_minutes: int) -> None:
    if not 0 < acknowledge_minutes <= MAX_ACKNOWLEDGE_MINUTES:
        raise Invalid(
            "Acknowledging must take between 1 and %(max)s covered minutes.",
            field="acknowledge_minutes",
            max=MAX_ACKNOWLEDGE_MINUTES,
        )
    if not 0 < remind_before_due_minutes <= MAX_REMIND_BEFORE_DUE_MINUTES:
        raise Invalid(
            "The reminder comes between 1 and %(max)s minutes before the due time.",
            field="remind_before_due_minutes",
            max=MAX_REMIND_BEFORE_DUE_MINUTES,
        )


async def set_task_policy(
    session: AsyncSession,
    actor: Actor,
    business: Business,
    *,
    acknowledge_minutes: int,
    remind_before_due_minutes: int,
) -> int:
    """Change the business's task policy (audited as `actor`'s); returns how many open
    hand-offs got a new time."""
    check_task_policy(acknowledge_minutes, remind_before_due_minutes)
    policy = await session.get(TaskPolicy, business.id)
    if policy is None:
        policy = TaskPolicy(business_id=business.id, settings={})
        session.add(policy)
    policy.acknowledge_minutes = acknowledge_minutes
    policy.remind_before_due_minutes = remind_before_due_minutes
    await session.flush()
    moved = await restart_task_clocks(session, business)
    await record_change(session, actor, "sla.task_policy_set", business)
    return moved


async def restart_task_clocks(session: AsyncSession, business: Business) -> int:
    """Open tasks count their promises again under the current policy and hours (as
    start_task_clock does): hand-offs their acknowledgement, unless given already (it keeps the
    time it was measured against), and every task its reminder. Returns how many."""
    open_tasks = (
        await session.scalars(
            select(Task).where(Task.business_id == business.id, Task.status == "open")
        )
    ).all()
    for task in open_tasks:
        promised = task.acknowledge_by
        await start_task_clock(session, task, business)
        if task.acknowledged_at is not None:
            task.acknowledge_by = promised
    await session.flush()
    upcoming = [task.next_alert_at for task in open_tasks if task.next_alert_at is not None]
    if upcoming:
        after_commit(session, SweepAt(min(upcoming)))
    return len(open_tasks)


def _set_next_alert(task: Task, *, after: datetime) -> None:
    moments = [task.due_at]
    if task.acknowledged_at is None and task.acknowledge_by is not None:
        moments.append(task.acknowledge_by)
    if task.remind_at is not None:
        moments.append(task.remind_at)
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
    await record_acknowledgement(session, task, by=user.id, via="console", now=now)
    return task


async def record_acknowledgement(
    session: AsyncSession, task: Task, *, by: uuid.UUID, via: str, now: datetime
) -> bool:
    """Keep who acknowledged, from where, when, and how many covered minutes it took (what
    the task policy's promise is measured against); a raised acknowledgement alert is cleared.
    False when it was acknowledged before, which changes nothing."""
    if task.acknowledged_at is not None:
        return False
    if via not in VIA:
        raise ValueError(f"unknown acknowledgement channel {via!r}")
    business = await session.get_one(Business, task.business_id)
    task.acknowledged_at = now
    task.acknowledged_by_id = by
    task.acknowledged_via = via
    task.acknowledge_covered_minutes = round(
        clock_for(business).covered_minutes_between(task.created_at, now), 2
    )
    # The due time stays watched even when it has passed already (its alert is keyed, so a
    # sweep that raised it before raises nothing again).
    _set_next_alert(task, after=task.created_at)
    await session.flush()
    await session.execute(
        update(Alert)
        .where(
            Alert.key == f"task:{task.id}:task_ack",
            Alert.acknowledged_at.is_(None),
            Alert.cleared_at.is_(None),
        )
        .values(cleared_at=now)
        .execution_options(synchronize_session=False)
    )
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
        via=via,
    )
    return True


def acknowledged_in_time(task: Task) -> bool | None:
    """Whether the acknowledgement kept the policy's promise; None until there is one."""
    if task.acknowledged_at is None or task.acknowledge_by is None:
        return None
    return task.acknowledged_at <= task.acknowledge_by


async def sweep_tasks(
    session: AsyncSession, *, now: datetime, limit: int = 1000, links: TaskLinks | None = None
) -> int:
    """Raise the task alerts that are due and remind the assignees (an owner's reminder
    carries `links` to answer it); returns how many alerts are new."""
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
    reminders: list[tuple[Task, task_notices.Kind]] = []
    for task in due:
        if task.status == "open":
            if task.acknowledged_at is None and task.acknowledge_by and task.acknowledge_by <= now:
                rows.append(_alert(task, "task_ack", task.acknowledge_by, now))
            if task.due_at <= now:
                rows.append(_alert(task, "task_due", task.due_at, now))
                reminders.append((task, "overdue"))
            elif task.remind_at is not None and task.remind_at <= now:
                reminders.append((task, "due_soon"))
        _set_next_alert(task, after=now)
    await session.flush()
    await task_notices.remind_assignees(session, reminders, links=links, now=now)
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
        "id": new_id(),
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
