"""Hand-offs: a follow-up task for the owner (or another secretary), and its life until done."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.db import after_commit, made_once
from console.base.errors import Conflict, Invalid, NotFound
from console.base.scheduler import SweepAt
from console.leads.leads import get_lead
from console.live import events
from console.people.tenancy import VIEWER_ID, get_scoped, may_see_bound
from console.tasks import paging, task_notices, task_sla
from console.tasks.on_call import people_for_hand_off as people_for_hand_off
from console.tasks.task_links import TaskLinks
from models import Lead, Role, Task, User
from models.leads import PRIORITIES

# A due time a minute in the past is a slow click, not a mistake.
PAST_TOLERANCE = timedelta(minutes=1)


@dataclass(frozen=True)
class HandOff:
    assignee_id: str
    title: str
    due: str  # the business's wall time as typed, "2026-11-23T14:30"
    details: str = ""
    priority: str = "normal"
    request_key: str = ""  # the form's one-time key: a double click hands off once


def parse_local(value: str, timezone: str) -> datetime | None:
    """A wall time in the business's zone (a `datetime-local` input), as UTC."""
    if not value.strip():
        return None
    try:
        return (
            datetime.fromisoformat(value.strip()).replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
        )
    except ValueError:
        raise Invalid("Enter the due time as a date and time.", field="due") from None


async def hand_off(
    session: AsyncSession,
    user: User,
    lead_id: str | uuid.UUID,
    handoff: HandOff,
    *,
    now: datetime,
    links: TaskLinks | None = None,
) -> Task:
    """Hand a task off; an owner is told on his channel, with `links` to answer it; an urgent
    one pages the business's on-call chain (console/tasks/paging.py)."""
    lead = await get_lead(session, user, lead_id)
    if not handoff.title.strip():
        raise Invalid("Give the task a title.", field="title")
    due_at = parse_local(handoff.due, lead.business.timezone)
    if due_at is None:
        raise Invalid("Say when the task is due.", field="due")
    if due_at < now - PAST_TOLERANCE:
        raise Invalid("The due time is in the past.", field="due")
    if handoff.priority not in PRIORITIES:
        raise Invalid("Unknown priority.", field="priority")
    allowed = {person.id: person for person in await people_for_hand_off(session, lead.business_id)}
    try:
        assignee = allowed[uuid.UUID(handoff.assignee_id)]
    except (ValueError, KeyError):
        raise Invalid("Pick whom the task is for.", field="assignee_id") from None
    key = handoff.request_key[:64] or None

    async def earlier() -> Task | None:
        if key is None:
            return None
        return await session.scalar(
            select(Task).where(Task.business_id == lead.business_id, Task.request_key == key)
        )

    async def write() -> Task:
        return await _new_task(session, user, lead, handoff, assignee, due_at, key, now, links)

    task, _new = await made_once(session, earlier, write)
    return task


async def _new_task(
    session: AsyncSession,
    user: User,
    lead: Lead,
    handoff: HandOff,
    assignee: User,
    due_at: datetime,
    key: str | None,
    now: datetime,
    links: TaskLinks | None,
) -> Task:
    task = Task(
        business_id=lead.business_id,
        lead_id=lead.id,
        created_by_id=user.id,
        assignee_id=assignee.id,
        title=handoff.title.strip()[:300],
        details=handoff.details[:20_000],
        due_at=due_at,
        priority=handoff.priority,
        status="open",  # the clock reads it before the INSERT would set it
        created_at=now,
        request_key=key,
    )
    await task_sla.start_task_clock(session, task, lead.business)  # before it is added:
    session.add(task)  # one INSERT with its promises, not an INSERT and UPDATEs
    await session.flush()
    if task.next_alert_at is not None:
        after_commit(session, SweepAt(task.next_alert_at))
    await events.record(
        session,
        task.business_id,
        "task.created",
        at=now,
        task_id=task.id,
        lead_id=lead.id,
        assignee_id=assignee.id,
    )
    if assignee.role == Role.OWNER:  # secretaries see their tasks live in the console
        await task_notices.tell_assignee(
            session, task, assignee, lead.business, "handed", links=links, now=now
        )
    await paging.start_paging(session, task, lead.business, now=now, links=links)  # if urgent
    return task


@functools.cache
def _my_tasks_statement(role: str, of_status: bool) -> Select[Task]:
    """Built once per role (and with or without a status): the tasks page and the portal read
    it on every request."""
    statement = (
        select(Task)
        .where(
            may_see_bound(role, Task.business_id),
            or_(Task.assignee_id == VIEWER_ID, Task.created_by_id == VIEWER_ID),
        )
        .options(joinedload(Task.assignee), joinedload(Task.created_by), joinedload(Task.business))
    )
    if of_status:
        statement = statement.where(Task.status == bindparam("status"))
    return statement.order_by(Task.due_at).limit(200)


async def my_tasks(session: AsyncSession, user: User, *, status: str = "open") -> list[Task]:
    """Tasks for the user (and, for a secretary, the ones she handed off), soonest due first."""
    values = {"viewer_id": user.id, "status": status}
    statement = _my_tasks_statement(user.role, bool(status))
    return list((await session.scalars(statement, values)).all())


@functools.cache
def _tasks_of_lead_statement(role: str) -> Select[Task]:
    """Built once per role: every lead page reads it."""
    return (
        select(Task)
        .where(may_see_bound(role, Task.business_id), Task.lead_id == bindparam("lead_id"))
        .options(joinedload(Task.assignee))
        .order_by(Task.created_at.desc())
    )


async def tasks_of_lead(session: AsyncSession, user: User, lead: Lead) -> list[Task]:
    values = {"lead_id": lead.id, "viewer_id": user.id}
    return list((await session.scalars(_tasks_of_lead_statement(user.role), values)).all())


async def set_task_status(
    session: AsyncSession, user: User, task_id: str | uuid.UUID, status: str, *, now: datetime
) -> Task:
    """Mark a task done or cancelled (its assignee, its creator or an admin may)."""
    if status not in ("done", "cancelled", "open"):
        raise Invalid("Unknown task status.", field="status")
    task = await get_scoped(session, user, Task, task_id)
    if user.id not in (task.assignee_id, task.created_by_id) and user.role != Role.ADMIN:
        raise NotFound("Not found.")
    if task.status != "open" and status != "open" and task.status != status:
        raise Conflict("This task was closed already.")
    changed = task.status != status
    task.status = status
    if changed:  # done twice keeps the first time
        task.completed_at = now if status == "done" else None
    if status != "open":
        task.next_alert_at = None
    await session.flush()
    if changed:
        await events.record(
            session,
            task.business_id,
            f"task.{status}" if status != "open" else "task.reopened",
            at=now,
            task_id=task.id,
            lead_id=task.lead_id,
            assignee_id=task.assignee_id,
        )
    return task
