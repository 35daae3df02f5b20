"""Paging the on-call chain for an urgent hand-off, until someone acknowledges.

An urgent hand-off (priority "urgent") of a business with a rota (console/tasks/on_call.py)
pages the first person of the rota's order at that moment who is active and available
(console/people/availability.py: in a meeting, on vacation or not to be disturbed, he is passed
over). The page goes through the notification sender on the way he asked for (SMS, WhatsApp,
e-mail; push and a call, which have no provider yet, go by SMS, or e-mail without a phone) with
a link and a six-digit code. He acknowledges with the link (`/ack/on-call/<token>`) or by replying
the code by SMS or WhatsApp (the inbound webhooks ask `acknowledge_by_reply` first). Unanswered
for the rota's minutes, the page passes to the next person (the SLA sweep runs `escalate_due`,
and is scheduled at each page's moment). A code answers its own page, once, from its own
recipient's phone.

Every page, its delivery (the notification's status), its acknowledgement and its passing on
are the lead's `pages`, shown on the lead page and redrawn live by their events
(`page.sent`, `page.passed`, `page.acknowledged`, `page.exhausted`). When the order is spent
with nobody acknowledging, the agency gets a breach alert (`on_call_exhausted`, once per task)
on its alerts panel.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.db import after_commit, dialect_of
from console.base.errors import Conflict, ConsoleError, Invalid, NotFound
from console.base.i18n import gettext, using_locale
from console.base.scheduler import SweepAt
from console.channels.notify import queue_notification, queue_push
from console.contacts.contacts import normalise_phone
from console.live import events
from console.people.availability import away_now
from console.sla.sla import clock_for, insert_new_alerts
from console.tasks.on_call import order_at, reach_of, rota_of
from console.tasks.task_links import TaskLinks
from models import Business, Notification, Task, User
from models.base import new_id
from models.on_call import Page

SALT = "mazkira.page-link"
CODE = re.compile(r"^\s*(\d{6})\s*$")
# The channel a page goes on for each way of being reached (push and a call have no provider).
CHANNEL = {"sms": "sms", "whatsapp": "whatsapp", "email": "email", "push": "sms", "call": "sms"}
Outcome = Literal["acknowledged", "refused", "not_a_code"]


@dataclass(frozen=True)
class PageRow:
    """A page as the lead page shows it, with how far its message got."""

    page: Page
    delivery: str | None  # the notification's status: queued, sent, failed


async def start_paging(
    session: AsyncSession, task: Task, business: Business, *, now: datetime, links: TaskLinks | None
) -> Page | None:
    """Page the first person for an urgent task; None when the business has no rota or nobody
    in it can be paged now."""
    if task.priority != "urgent":
        return None
    return await _page_next(session, task, business, now=now, links=links)


async def _page_next(
    session: AsyncSession,
    task: Task,
    business: Business,
    *,
    now: datetime,
    links: TaskLinks | None,
) -> Page | None:
    rota = await rota_of(session, business.id)
    if rota is None or not (rota.chain or rota.weekly or rota.dates or rota.holidays or rota.eves):
        return None
    earlier = list(
        await session.scalars(select(Page).where(Page.task_id == task.id).order_by(Page.position))
    )
    paged = {page.user_id for page in earlier}
    order = order_at(rota, clock_for(business), now)
    ids = [uuid.UUID(hex=user) for user, _reach in order]
    people = {p.id: p for p in await session.scalars(select(User).where(User.id.in_(ids)))}
    for (_hex, reach), user_id in zip(order, ids, strict=True):
        person = people.get(user_id)
        if person is None or not person.active or user_id in paged:
            continue
        if away_now(person, now) is not None:
            continue
        return await _page(
            session,
            task,
            business,
            person,
            reach or reach_of(person),
            position=len(earlier) + 1,
            minutes=rota.ack_minutes,
            now=now,
            links=links,
        )
    await events.record(
        session, business.id, "page.exhausted", at=now, lead_id=task.lead_id, task_id=task.id
    )
    await _alert_agency(session, task, now=now)
    return None


async def _alert_agency(session: AsyncSession, task: Task, *, now: datetime) -> None:
    """Nobody in the chain acknowledged (or nobody could be paged): a breach on the agency's
    alerts panel, raised once per task, pushed live like every alert."""
    row = {
        "id": new_id(),
        "key": f"task:{task.id}:on_call_exhausted",
        "business_id": task.business_id,
        "lead_id": task.lead_id,
        "task_id": task.id,
        "kind": "on_call_exhausted",
        "level": "breach",
        "percent": 100,
        "due_at": now,
        "raised_at": now,
    }
    for raised in await insert_new_alerts(session, [row]):
        await events.record(
            session,
            task.business_id,
            "alert.raised",
            at=now,
            alert_id=raised["id"],
            lead_id=task.lead_id,
            level="breach",
        )


async def _page(
    session: AsyncSession,
    task: Task,
    business: Business,
    person: User,
    reach: str,
    *,
    position: int,
    minutes: int,
    now: datetime,
    links: TaskLinks | None,
) -> Page:
    channel, recipient = CHANNEL[reach] if person.phone else "email", person.email
    if channel != "email":
        try:
            recipient = normalise_phone(person.phone or "")
        except Invalid:  # a phone no channel can send to: e-mail still reaches him
            channel = "email"
    page = Page(
        business_id=business.id,
        task_id=task.id,
        lead_id=task.lead_id,
        user_id=person.id,
        position=position,
        reach=reach,
        channel=channel,
        recipient=recipient,
        code=f"{secrets.randbelow(10**6):06d}",
        paged_at=now,
        ack_due_at=now + timedelta(minutes=minutes),
    )
    session.add(page)
    await session.flush()
    key = f"page:{page.id}"
    with using_locale(person.locale):
        subject, body = _message(task, business, page, minutes, links)
    try:
        await queue_notification(
            session,
            key=key,
            business_id=business.id,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            user_id=person.id,
            now=now,
        )
    except Invalid:  # a phone the channel cannot send to: e-mail still reaches him
        page.channel, page.recipient = "email", person.email
        await queue_notification(
            session,
            key=key,
            business_id=business.id,
            channel="email",
            recipient=person.email,
            subject=subject,
            body=body,
            user_id=person.id,
            now=now,
        )
    # and to his browsers, when he wants urgent matters by push (console/channels/push.py)
    await queue_push(
        session,
        person,
        kind="urgent",
        key=key,
        business_id=business.id,
        title=subject,
        body=body,
        now=now,
    )
    page.notification_id = await session.scalar(
        select(Notification.id).where(Notification.idempotency_key == key)
    )
    await session.flush()
    assert page.ack_due_at is not None
    after_commit(session, SweepAt(page.ack_due_at))
    await events.record(
        session,
        business.id,
        "page.sent",
        at=now,
        lead_id=task.lead_id,
        task_id=task.id,
        page_id=page.id,
        user_id=person.id,
    )
    return page


def _message(
    task: Task, business: Business, page: Page, minutes: int, links: TaskLinks | None
) -> tuple[str, str]:
    values = {"business": business.name, "title": task.title[:120], "minutes": minutes}
    subject = gettext("Urgent, %(business)s: %(title)s") % values
    lines = [gettext("Urgent for %(business)s: %(title)s.") % values]
    if task.details.strip():
        lines.append(task.details.strip()[:300])
    url = link_url(links, page) if links is not None else None
    if url:
        lines.append(
            gettext("Acknowledge within %(minutes)s minutes: %(url)s") % {**values, "url": url}
        )
    if page.channel in ("sms", "whatsapp"):
        lines.append(gettext("Or reply with the code %(code)s.") % {"code": page.code})
    lines.append(gettext("Unacknowledged, it goes to the next person on call."))
    return subject, "\n".join(lines)


def link_url(links: TaskLinks, page: Page) -> str | None:
    if not links.public_url:
        return None
    token = URLSafeSerializer(links.secret_key, salt=SALT).dumps(page.id.hex)
    return f"{links.public_url.rstrip('/')}/ack/on-call/{token}"


async def page_of_token(session: AsyncSession, secret_key: str, token: str) -> Page:
    """The page a link names; a 400 for a token that is not ours, 404 for a page gone."""
    try:
        page_id = uuid.UUID(hex=str(URLSafeSerializer(secret_key, salt=SALT).loads(token)))
    except (BadSignature, ValueError):
        raise ConsoleError(
            "This link is not valid. Open the lead in the console instead."
        ) from None
    page = await session.scalar(
        select(Page)
        .where(Page.id == page_id)
        .options(joinedload(Page.user))
        .execution_options(populate_existing=True)
    )
    if page is None:
        raise NotFound("Not found.")
    return page


async def acknowledge(session: AsyncSession, page: Page, *, via: str, now: datetime) -> Page:
    """He has it. Acknowledging twice changes nothing; a page passed on to the next person is
    no longer his to acknowledge (409)."""
    if page.acknowledged_at is not None:
        return page
    if page.passed_at is not None:
        raise Conflict("This page went to the next person on call.")
    page.acknowledged_at, page.acknowledged_via, page.ack_due_at = now, via, None
    await session.flush()
    await events.record(
        session,
        page.business_id,
        "page.acknowledged",
        at=now,
        lead_id=page.lead_id,
        task_id=page.task_id,
        page_id=page.id,
        via=via,
    )
    return page


async def acknowledge_by_reply(
    session: AsyncSession, sender: str, text: str, *, via: str, now: datetime
) -> Outcome:
    """A message from a paged phone that is only a code: "acknowledged" when it is the code of
    his open page, "refused" when it is not (used, passed on, another's), "not_a_code" when the
    message is anything else or its sender was never paged (the message goes on as usual)."""
    match = CODE.match(text)
    if match is None:
        return "not_a_code"
    try:
        phone = normalise_phone(sender)
    except Invalid:
        return "not_a_code"
    pages = list(
        await session.scalars(
            select(Page)
            .where(Page.recipient == phone)
            .order_by(Page.paged_at.desc())
            .limit(20)
            .with_for_update()
        )
    )
    if not pages:
        return "not_a_code"
    for page in pages:
        if page.code == match.group(1) and page.acknowledged_at is None and page.passed_at is None:
            await acknowledge(session, page, via=via, now=now)
            return "acknowledged"
    return "refused"


async def escalate_due(session: AsyncSession, *, now: datetime, links: TaskLinks | None) -> int:
    """Pass every page unacknowledged past its time to the next person; safe on many workers at
    once (PostgreSQL skips the rows another holds; SQLite's writers take turns)."""
    statement = select(Page).where(Page.ack_due_at <= now).order_by(Page.ack_due_at).limit(100)
    if dialect_of(session) == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    due = list(await session.scalars(statement))
    for page in due:
        page.passed_at, page.ack_due_at = now, None
        await session.flush()
        await events.record(
            session,
            page.business_id,
            "page.passed",
            at=now,
            lead_id=page.lead_id,
            task_id=page.task_id,
            page_id=page.id,
        )
        task = await session.scalar(
            select(Task).where(Task.id == page.task_id).options(joinedload(Task.business))
        )
        if task is not None and task.status == "open":
            await _page_next(session, task, task.business, now=now, links=links)
    return len(due)


@dataclass(frozen=True)
class LeadPages:
    """A lead's pages, oldest first, as its page shows them."""

    rows: list[PageRow]

    @property
    def holder(self) -> PageRow | None:
        """Who has it now: the latest page acknowledged, else the one waiting for an answer."""
        for row in reversed(self.rows):
            if row.page.acknowledged_at is not None or row.page.ack_due_at is not None:
                return row
        return None


async def pages_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> LeadPages:
    """The lead's pages with whom and how far each message got: one statement."""
    rows = await session.execute(
        select(Page, Notification.status)
        .outerjoin(Notification, Notification.id == Page.notification_id)
        .where(Page.lead_id == lead_id)
        .options(joinedload(Page.user))
        .order_by(Page.paged_at, Page.position)
    )
    return LeadPages([PageRow(page, status) for page, status in rows])
