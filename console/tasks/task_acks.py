"""An owner answers a hand-off without signing in: the signed link of his notification (a page
that asks, then a POST that applies) or a WhatsApp reply button. The token is the proof; it
names the task, its assignee and the action, and expires (console/tasks/task_links.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.errors import Conflict, ConsoleError, NotFound
from console.live import events
from console.tasks.task_links import BUTTON, LINK, TaskAction, read_token
from console.tasks.task_sla import acknowledged_in_time, record_acknowledgement
from models import Alert, Task

log = logging.getLogger("mazkira.task_acks")


@dataclass(frozen=True)
class LinkView:
    """What the confirmation page shows: the task, what the link does, how it stands."""

    task: Task
    action: str
    in_time: bool | None  # the acknowledgement against the task policy; None while unanswered

    @property
    def locale(self) -> str:
        return self.task.assignee.locale

    @property
    def applied(self) -> bool:
        """The link's action is done already (a second tap changes nothing)."""
        if self.action == "done":
            return self.task.status == "done"
        return self.task.acknowledged_at is not None or self.task.status == "done"


async def link_view(
    session: AsyncSession, secret_key: str, token: str, *, now: datetime
) -> LinkView:
    """Read a link's token and its task; changes nothing (a GET, a mail scanner's preview)."""
    action = read_token(secret_key, token, purpose=LINK, now=now)
    task = await _task_of(session, action)
    return LinkView(task, action.action, acknowledged_in_time(task))


async def apply_link(
    session: AsyncSession, secret_key: str, token: str, *, now: datetime
) -> LinkView:
    """Mark the task seen or done as the link says, as its assignee; doing it twice changes
    nothing. a 400 for a token that is not ours or expired, NotFound (404) for a task
    that is gone or handed to someone else, Conflict (409) for a cancelled one."""
    action = read_token(secret_key, token, purpose=LINK, now=now)
    task = await _apply(session, action, via="link", now=now)
    return LinkView(task, action.action, acknowledged_in_time(task))


async def apply_button_reply(
    session: AsyncSession, payload: str, *, now: datetime, secret_key: str
) -> bool:
    """A tap on a reply button of a task's WhatsApp message (the webhook passes the button's
    id); True when it was one of ours and the task is now as it asked. Anything else (forged,
    expired, a task gone or cancelled) changes nothing and gives False."""
    try:
        action = read_token(secret_key, payload, purpose=BUTTON, now=now)
        await _apply(session, action, via="whatsapp", now=now)
    except ConsoleError as refused:
        log.info("a task button reply was refused: %s", refused.message)
        return False
    return True


async def _task_of(session: AsyncSession, action: TaskAction) -> Task:
    task = await session.scalar(
        select(Task)
        .where(Task.id == action.task_id)
        .options(joinedload(Task.business), joinedload(Task.assignee))
        .execution_options(populate_existing=True)
    )
    if task is None or task.assignee_id != action.assignee_id or not task.assignee.active:
        raise NotFound("This task is no longer yours to answer.")
    return task


async def _apply(session: AsyncSession, action: TaskAction, *, via: str, now: datetime) -> Task:
    task = await _task_of(session, action)
    if task.status == "cancelled":
        raise Conflict("This task was cancelled.")
    await record_acknowledgement(session, task, by=task.assignee_id, via=via, now=now)
    if action.action == "done" and task.status == "open":
        task.status = "done"
        task.completed_at = now
        task.next_alert_at = None
        await session.flush()
        await session.execute(
            update(Alert)
            .where(
                Alert.task_id == task.id,
                Alert.acknowledged_at.is_(None),
                Alert.cleared_at.is_(None),
            )
            .values(cleared_at=now)
            .execution_options(synchronize_session=False)
        )
        await events.record(
            session,
            task.business_id,
            "task.done",
            at=now,
            task_id=task.id,
            lead_id=task.lead_id,
            assignee_id=task.assignee_id,
            via=via,
        )
    return task
