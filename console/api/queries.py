"""The JSON API v1's queries: every one goes through the tenancy rule; lists are pages in a
fixed order (newest first) with an opaque cursor, each one statement (an interaction list two:
its lead is checked first). What a request may say and what an answer holds:
console/api/payloads.py.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from console.api.payloads import (
    MAX_IDEMPOTENCY_KEY,
    ContactBrief,
    ContactOut,
    ContactPage,
    ContactQuery,
    DayCount,
    InteractionOut,
    InteractionPage,
    KpiOut,
    KpiQuery,
    LeadOut,
    LeadPage,
    LeadQuery,
    NewLeadRequest,
    PageQuery,
    TaskOut,
    TaskPage,
    TaskQuery,
)
from console.base.db import Database, dialect_of
from console.base.errors import Invalid, NotFound, Unauthorized
from console.base.newest import newest_per_business
from console.business import periods
from console.intake import arrivals
from console.intake.arrivals import Arrival, Arrived, ByToken, NewLead
from console.people import api_tokens
from console.people.tenancy import get_business, may_see, parse_id, visible_business_ids
from console.reports import kpi_report, kpis
from console.tasks import tasks
from models import Contact, Interaction, Lead, Role, Task, User

S = TypeVar("S", bound=Select[*tuple[Any, ...]])

# --- paging -----------------------------------------------------------------------------------


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{at.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        at_text, id_text = text.split("|")
        at = datetime.fromisoformat(at_text)
        if at.tzinfo is None:
            raise ValueError("naive cursor")
        return at.astimezone(UTC), uuid.UUID(id_text)
    except (ValueError, binascii.Error, OverflowError):
        raise Invalid("The cursor is not valid.", field="cursor") from None


def _paged(
    statement: S,
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    query: PageQuery,
) -> S:
    """Newest first, after the cursor, one row more than the page (to know if there is more)."""
    if query.cursor:
        statement = statement.where(_after(query.cursor, at, row_id))
    return statement.order_by(at.desc(), row_id.desc()).limit(query.limit + 1)


def _after(
    cursor: str, at: InstrumentedAttribute[datetime], row_id: InstrumentedAttribute[uuid.UUID]
) -> ColumnElement[bool]:
    """The rows older than the cursor's (the previous page's last)."""
    cursor_at, cursor_id = decode_cursor(cursor)
    return or_(at < cursor_at, and_(at == cursor_at, row_id < cursor_id))


def _next_cursor(rows: list[Any], query: PageQuery, key: Any) -> tuple[list[Any], str | None]:
    if len(rows) <= query.limit:
        return rows, None
    rows = rows[: query.limit]
    at, row_id = key(rows[-1])
    return rows, encode_cursor(at, row_id)


def _in_business(column: InstrumentedAttribute[Any], business: uuid.UUID | None) -> list[Any]:
    return [column == business] if business is not None else []


# --- leads ------------------------------------------------------------------------------------


# A lead's answer is read as plain columns (no ORM object per row) and validated in one pass
# of pydantic over the page: the list of 50 spent most of its time building and checking them.
_LEAD_FIELDS = tuple(field for field in LeadOut.model_fields if field != "contact")
_LEAD_COLUMNS = (
    *(getattr(Lead, field) for field in _LEAD_FIELDS),
    Lead.contact_id,
    Contact.name.label("contact_name"),
    Contact.phone.label("contact_phone"),
    Contact.email.label("contact_email"),
)


def _lead_statement(user: User, *conditions: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    return (
        select(*_LEAD_COLUMNS)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(may_see(user, Lead.business_id), *conditions)
    )


def _lead_fields(row: Any) -> dict[str, Any]:
    """A lead's answer from its row, as LeadOut validates it."""
    fields = {field: getattr(row, field) for field in _LEAD_FIELDS}
    fields["contact"] = {
        "id": row.contact_id,
        "name": row.contact_name,
        "phone": row.contact_phone,
        "email": row.contact_email,
    }
    return fields


async def leads_page(session: AsyncSession, user: User, query: LeadQuery) -> LeadPage:
    conditions = _in_business(Lead.business_id, query.business)
    if query.stage:
        conditions.append(Lead.stage == query.stage)
    if query.channel:
        conditions.append(Lead.channel == query.channel)
    if query.since:
        conditions.append(Lead.created_at >= query.since)
    # The ids are read within the user's businesses; the rows are then read by id alone (with
    # the rule again, PostgreSQL would read every lead of those businesses to check it).
    statement = (
        select(*_LEAD_COLUMNS)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(Lead.id.in_(_page_ids(session, user, query, conditions)))
        .order_by(Lead.created_at.desc(), Lead.id.desc())
    )
    rows, cursor = _next_cursor(
        list(await session.execute(statement)), query, lambda row: (row.created_at, row.id)
    )
    return LeadPage.model_validate(
        {"items": [_lead_fields(row) for row in rows], "next_cursor": cursor}
    )


def _page_ids(
    session: AsyncSession, user: User, query: LeadQuery, conditions: list[ColumnElement[bool]]
) -> Any:
    """The page's ids (one more than the page) from `ix_leads_business_created_id` alone, so
    only those rows are then read and joined to their contacts; the page costs what a
    business's newest leads cost, not what all of them do.

    On PostgreSQL a page per business the user may see (`newest_per_business`); SQLite (no
    LATERAL) reads the businesses' index entries (not their rows) and sorts those. An admin,
    who sees every business, is read as before."""
    if user.role == Role.ADMIN:
        return _paged(
            select(Lead.id).where(may_see(user, Lead.business_id), *conditions),
            Lead.created_at,
            Lead.id,
            query,
        ).scalar_subquery()
    if dialect_of(session) == "sqlite":
        return _paged(
            select(Lead.id)
            .with_hint(Lead, "INDEXED BY ix_leads_business_created_id", "sqlite")
            .where(may_see(user, Lead.business_id), *conditions),
            Lead.created_at,
            Lead.id,
            query,
        ).scalar_subquery()
    after = [_after(query.cursor, Lead.created_at, Lead.id)] if query.cursor else []
    return newest_per_business(
        select(Lead.id).where(*conditions, *after),
        Lead.business_id,
        Lead.created_at,
        Lead.id,
        visible_business_ids(user).subquery(),
        limit=query.limit + 1,
    ).scalar_subquery()


async def lead_by_id(session: AsyncSession, user: User, lead_id: str) -> LeadOut:
    row = (await session.execute(_lead_statement(user, Lead.id == parse_id(lead_id)))).first()
    if row is None:
        raise NotFound("Not found.")
    return LeadOut.model_validate(_lead_fields(row))


async def arrived_lead(db: Database, token_hash: str, arrived: Arrived) -> LeadOut:
    """The answer to a lead's creation: a new lead from the rows its group wrote (its columns
    are all known, the rest start at their defaults), a repeat's lead as it stands now, read as
    the token's user sees it."""
    lead = written_lead(arrived)
    if lead is not None:
        return lead
    async with db.transaction(write=False) as session:
        found = await api_tokens.authenticate_hash(session, token_hash)
        if found is None:  # revoked since its group was written
            raise Unauthorized(arrivals.TOKEN_REFUSED)
        return await lead_by_id(session, found[1], str(arrived.lead_id))


def written_lead(arrived: Arrived) -> LeadOut | None:
    if arrived.written is None:
        return None
    lead, contact = arrived.written
    brief = ContactBrief(id=contact.id, name=contact.name, phone=contact.phone, email=contact.email)
    return LeadOut(
        contact=brief,
        stage="new",
        claimed_by_id=None,
        first_response_at=None,
        closed_at=None,
        deal_value=None,
        lost_reason="",
        **{name: lead[name] for name in _WRITTEN},
    )


_WRITTEN = (
    "id",
    "business_id",
    "channel",
    "priority",
    "subject",
    "message",
    "source",
    "created_at",
    "stage_changed_at",
    "respond_by",
)


def lead_arrival(
    token_hash: str,
    new: NewLeadRequest,
    *,
    now: datetime,
    idempotency_key: str | None = None,
) -> Arrival:
    """The arrival of a lead created through the API, for a business the token's user must be
    able to see (the token and the tenancy rule are checked as it is written); a key names its
    lead, so a repeat of the request finds the lead the first one made."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise Invalid("The Idempotency-Key header is not valid.", field="Idempotency-Key")
    typed = NewLead(business_id=str(new.business_id), **new.model_dump(exclude={"business_id"}))
    where = ByToken(new.business_id, token_hash, idempotency_key)
    return arrivals.typed(where, typed, now=now)


# --- contacts ---------------------------------------------------------------------------------


async def contacts_page(session: AsyncSession, user: User, query: ContactQuery) -> ContactPage:
    statement = select(Contact).where(
        may_see(user, Contact.business_id), *_in_business(Contact.business_id, query.business)
    )
    statement = _paged(statement, Contact.created_at, Contact.id, query)
    rows, cursor = _next_cursor(
        list((await session.scalars(statement)).all()), query, lambda c: (c.created_at, c.id)
    )
    return ContactPage(items=[ContactOut.model_validate(c) for c in rows], next_cursor=cursor)


async def contact_by_id(session: AsyncSession, user: User, contact_id: str) -> ContactOut:
    contact = await session.scalar(
        select(Contact).where(
            Contact.id == parse_id(contact_id), may_see(user, Contact.business_id)
        )
    )
    if contact is None:
        raise NotFound("Not found.")
    return ContactOut.model_validate(contact)


# --- interactions -----------------------------------------------------------------------------


async def interactions_page(
    session: AsyncSession, user: User, lead_id: str, query: PageQuery
) -> InteractionPage:
    """A lead's interactions, newest first; a lead outside the user's businesses is 404."""
    lead_uuid = parse_id(lead_id)
    visible = await session.scalar(
        select(Lead.id).where(Lead.id == lead_uuid, may_see(user, Lead.business_id))
    )
    if visible is None:
        raise NotFound("Not found.")
    statement = select(Interaction).where(
        Interaction.lead_id == lead_uuid, may_see(user, Interaction.business_id)
    )
    statement = _paged(statement, Interaction.started_at, Interaction.id, query)
    rows, cursor = _next_cursor(
        list((await session.scalars(statement)).all()), query, lambda i: (i.started_at, i.id)
    )
    items = [InteractionOut.model_validate(i) for i in rows]
    return InteractionPage(items=items, next_cursor=cursor)


async def interaction_by_id(
    session: AsyncSession, user: User, interaction_id: str
) -> InteractionOut:
    interaction = await session.scalar(
        select(Interaction).where(
            Interaction.id == parse_id(interaction_id), may_see(user, Interaction.business_id)
        )
    )
    if interaction is None:
        raise NotFound("Not found.")
    return InteractionOut.model_validate(interaction)


# --- tasks ------------------------------------------------------------------------------------


async def tasks_page(session: AsyncSession, user: User, query: TaskQuery) -> TaskPage:
    statement = select(Task).where(
        may_see(user, Task.business_id), *_in_business(Task.business_id, query.business)
    )
    if query.status:
        statement = statement.where(Task.status == query.status)
    statement = _paged(statement, Task.created_at, Task.id, query)
    rows, cursor = _next_cursor(
        list((await session.scalars(statement)).all()), query, lambda t: (t.created_at, t.id)
    )
    return TaskPage(items=[TaskOut.model_validate(t) for t in rows], next_cursor=cursor)


async def task_by_id(session: AsyncSession, user: User, task_id: str) -> TaskOut:
    task = await session.scalar(
        select(Task).where(Task.id == parse_id(task_id), may_see(user, Task.business_id))
    )
    if task is None:
        raise NotFound("Not found.")
    return TaskOut.model_validate(task)


async def mark_task_done(
    session: AsyncSession, user: User, task_id: str, *, now: datetime
) -> TaskOut:
    """As in the console: its assignee, its creator or an admin may; done twice is still done."""
    task = await tasks.set_task_status(session, user, task_id, "done", now=now)
    return TaskOut.model_validate(task)


async def kpis_for(session: AsyncSession, user: User, query: KpiQuery, *, now: datetime) -> KpiOut:
    """A business's numbers for a period: 404 outside the user's businesses, 422 for a period
    that ends before it starts or is too long."""
    business = await get_business(session, user, query.business, "kpis")
    if query.from_ is None and query.to is None:
        period = periods.preset(periods.DEFAULT_PRESET, periods.local_today(business, now))
    elif query.from_ is None or query.to is None:
        name = "from" if query.from_ is None else "to"
        raise Invalid("The field %(name)s is not valid.", field=name, name=name)
    else:
        period = periods.check_period(query.from_, query.to)
    found = (await kpis.compute_kpis(session, [business], period, now=now))[business.id]
    report = kpi_report.KpiReport(
        business, found, await kpi_report.feedback_of(session, business, period)
    )
    return KpiOut.model_validate(
        {
            "business_id": business.id,
            "first_day": period.first,
            "last_day": period.last,
            "timezone": found.timezone,
            "service_level_seconds": found.service_level_seconds,
            "leads_by_channel": found.by_channel,
            "leads_by_day": [DayCount(day=day, leads=count) for day, count in found.by_day],
            **{metric.key: metric.value for metric in kpis.metrics(found)},
            **{metric.key: metric.value for metric in report.feedback_metrics},
        }
    )
