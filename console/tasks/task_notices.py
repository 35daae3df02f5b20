"""Telling a task's assignee: handed to him, due soon, overdue. On his channel, in his language,
once per task and kind (`task:<id>:<kind>`). An owner's message carries signed links (and on
WhatsApp reply buttons) to mark the task seen or done without signing in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.i18n import format_local, gettext, speaking_to
from console.business.reminder_policy import reminder_policies
from console.channels.to_person import send_to_person
from console.people.availability import held_until
from console.tasks.task_links import TaskLinks
from models import Business, Role, Task, User

Kind = Literal["handed", "due_soon", "overdue"]
# WhatsApp's limit for the text of a message with reply buttons.
BUTTONS_BODY_LENGTH = 1024
TITLE_IN_MESSAGE = 120


async def notify_user(
    session: AsyncSession,
    user: User,
    *,
    key: str,
    business_id: uuid.UUID,
    subject: str,
    body: str,
    buttons: list[dict[str, str]] | None = None,
    push_kind: str = "",
    now: datetime,
) -> bool:
    """On the person's chosen channel, or by e-mail when that channel has no address for him;
    True when this key was not queued before. While he is away (console/people/availability.py) it
    waits for the end of his status. A `push_kind` he wants by push (console/channels/push.py)
    also goes to his browsers."""
    return await send_to_person(
        session,
        user,
        key=key,
        business_id=business_id,
        subject=subject,
        body=body,
        buttons=buttons,
        push_kind=push_kind,
        now=now,
    )


async def tell_assignee(
    session: AsyncSession,
    task: Task,
    assignee: User,
    business: Business,
    kind: Kind,
    *,
    links: TaskLinks | None,
    now: datetime,
) -> bool:
    """Queue the message of this kind for the task's assignee (once; True when new)."""
    whatsapp = assignee.notify_channel == "whatsapp" and bool(assignee.phone)
    offer_links = links is not None and assignee.role == Role.OWNER and task.status == "open"
    actions = ["done"] if task.acknowledged_at else ["seen", "done"]
    # Links live a week from when he gets them, which is later while he is away.
    sent = held_until(assignee, now) or now
    with speaking_to(assignee):
        subject, lines = _message(task, business, kind)
        # Spoken to by name (ד״ר דנה לוי, not "the owner"), in the form he or she chose.
        lines.insert(0, gettext("Hello %(name)s,") % {"name": assignee.name})
        titles = {"seen": gettext("Seen"), "done": gettext("Done")}
        buttons: list[dict[str, str]] | None = None
        if offer_links and links is not None and whatsapp:
            buttons = [
                {
                    "id": links.button_id(task.id, assignee.id, action, now=sent),
                    "title": titles[action],
                }
                for action in actions
            ]
        elif offer_links and links is not None:
            for action in actions:
                url = links.url(task.id, assignee.id, action, now=sent)
                if url:
                    label = (
                        gettext("Mark it seen:") if action == "seen" else gettext("Mark it done:")
                    )
                    lines.append(f"{label} {url}")
    body = "\n".join(lines)
    if buttons:
        body = body[:BUTTONS_BODY_LENGTH]
    return await notify_user(
        session,
        assignee,
        key=f"task:{task.id}:{kind}",
        business_id=task.business_id,
        subject=subject,
        body=body,
        buttons=buttons,
        push_kind="urgent" if task.priority == "urgent" else "handoff",
        now=now,
    )


def _message(task: Task, business: Business, kind: Kind) -> tuple[str, list[str]]:
    title = task.title if len(task.title) <= TITLE_IN_MESSAGE else task.title[:119] + "…"
    due = format_local(task.due_at, business.timezone)
    values = {"business": business.name, "title": title, "due": due}
    if kind == "handed":
        subject = gettext("A task for you: %(title)s") % values
        lines = [gettext("%(business)s: %(title)s, due %(due)s.") % values]
        if task.details.strip():
            lines.append(task.details.strip()[:400])
    elif kind == "due_soon":
        subject = gettext("Due soon: %(title)s") % values
        lines = [gettext("%(business)s: %(title)s is due %(due)s.") % values]
    else:
        subject = gettext("Overdue: %(title)s") % values
        lines = [gettext("%(business)s: %(title)s was due %(due)s and is still open.") % values]
    return subject, lines


async def remind_assignees(
    session: AsyncSession,
    due: list[tuple[Task, Kind]],
    *,
    links: TaskLinks | None,
    now: datetime,
) -> int:
    """The sweep's due-soon and overdue reminders, for businesses that want them; a fixed
    number of statements whatever the count. Returns how many were new."""
    if not due:
        return 0
    business_ids = sorted({task.business_id for task, _kind in due})
    policies = await reminder_policies(session, business_ids)
    businesses = {
        b.id: b
        for b in await session.scalars(select(Business).where(Business.id.in_(business_ids)))
    }
    people = {
        u.id: u
        for u in await session.scalars(
            select(User).where(User.id.in_({task.assignee_id for task, _kind in due}))
        )
    }
    new = 0
    for task, kind in due:
        assignee = people.get(task.assignee_id)
        if not policies[task.business_id].task_reminders or assignee is None:
            continue
        if not assignee.active:
            continue
        business = businesses[task.business_id]
        new += await tell_assignee(session, task, assignee, business, kind, links=links, now=now)
    return new
