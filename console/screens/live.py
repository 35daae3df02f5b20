"""What the live fragments show, loaded for an event.

The hub has already narrowed the audience to consoles that may see the event's business (the
tenancy rule, applied when the socket joined), so these load by id, within that business.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from console.leads.leads import QueueRow
from console.live.events import LiveEvent
from models import Business, Contact, Event, Lead, Task, User

# How far before a page was rendered a console's first replay reaches back, for clock skew
# between web processes; replayed fragments replace what is there, so overlap is harmless.
SINCE_MARGIN = timedelta(seconds=5)


async def queue_row(session: AsyncSession, business_id: str, lead_id: str) -> QueueRow | None:
    """One lead's inbox row (every new lead's event renders it: the statement is built once)."""
    found = await session.execute(
        _QUEUE_ROW, {"lead": uuid.UUID(lead_id), "business": uuid.UUID(business_id)}
    )
    row = found.one_or_none()
    return QueueRow(*row) if row else None


_HOLDER = aliased(User)
_QUEUE_ROW = (
    select(*QueueRow.columns(_HOLDER))
    .join(Contact, Contact.id == Lead.contact_id)
    .join(Business, Business.id == Lead.business_id)
    .outerjoin(_HOLDER, _HOLDER.id == Lead.claimed_by_id)
    .where(Lead.id == bindparam("lead"), Lead.business_id == bindparam("business"))
)


async def lead_with_people(session: AsyncSession, business_id: str, lead_id: str) -> Lead | None:
    statement = (
        select(Lead)
        .where(Lead.id == uuid.UUID(lead_id), Lead.business_id == uuid.UUID(business_id))
        .options(joinedload(Lead.business), joinedload(Lead.contact), joinedload(Lead.claimed_by))
        .execution_options(populate_existing=True)
    )
    return await session.scalar(statement)


async def lead_tasks(session: AsyncSession, lead: Lead) -> list[Task]:
    statement = (
        select(Task)
        .where(Task.lead_id == lead.id, Task.business_id == lead.business_id)
        .options(joinedload(Task.assignee))
        .order_by(Task.created_at.desc())
    )
    return list((await session.scalars(statement)).all())


async def task_for_row(session: AsyncSession, business_id: str, task_id: str) -> Task | None:
    statement = (
        select(Task)
        .where(Task.id == uuid.UUID(task_id), Task.business_id == uuid.UUID(business_id))
        .options(joinedload(Task.business), joinedload(Task.assignee), joinedload(Task.created_by))
    )
    return await session.scalar(statement)


async def events_since_time(
    session: AsyncSession, business_ids: list[str], since: datetime, *, limit: int
) -> list[LiveEvent]:
    """Events of these businesses written since a page was rendered (a console's first replay)."""
    if not business_ids:
        return []
    statement = (
        select(Event)
        .where(
            Event.business_id.in_([uuid.UUID(b) for b in business_ids]),
            Event.created_at >= since - SINCE_MARGIN,
        )
        .order_by(Event.id)
        .limit(limit)
    )
    return [LiveEvent.of(row) for row in await session.scalars(statement)]
