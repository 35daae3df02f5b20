"""The JSON API v1: what a request may say, what an answer holds, and the queries behind it.

The pydantic models here validate the requests and shape the answers, and the OpenAPI document
(console/openapi.py) is generated from the same models, so the two cannot drift apart. Every
query goes through the tenancy rule; lists are pages in a fixed order (newest first) with an
opaque cursor, each one statement (an interaction list two: its lead is checked first).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from console import kpis, leads, periods, tasks
from console.db import made_once
from console.errors import ConsoleError, Invalid, NotFound
from console.tenancy import get_business, may_see, parse_id
from models import Contact, Interaction, Lead, Task, User
from models.contacts import CHANNELS
from models.leads import INTERACTION_KINDS, PRIORITIES, STAGES
from models.tasks import TASK_STATUSES

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# A client's Idempotency-Key names the lead it makes: the same key (of the same user) always
# names the same lead id, which the primary key then keeps unique.
IDEMPOTENCY_NAMESPACE = uuid.UUID("4d9a3f64-5b1e-4f0c-9a57-6b0f3c1f2e10")
MAX_IDEMPOTENCY_KEY = 200

Channel = Literal["phone", "whatsapp", "sms", "email", "web", "walk-in"]
Stage = Literal["new", "contacted", "meeting", "quote", "won", "lost"]
Priority = Literal["low", "normal", "high", "urgent"]
TaskStatus = Literal["open", "done", "cancelled"]
InteractionKind = Literal["inbound_call", "outbound_call", "whatsapp", "sms", "email", "note"]
for _literal, _stored in (
    (Channel, CHANNELS),
    (Stage, STAGES),
    (Priority, PRIORITIES),
    (TaskStatus, TASK_STATUSES),
    (InteractionKind, INTERACTION_KINDS),
):
    assert get_args(_literal) == _stored, "the API's choices must be the database's"


def _storable(value: str) -> str:
    """Text a database can hold: no lone surrogates (JSON can carry them, UTF-8 cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text") from None
    return value


# NUL is refused by the pattern (so the document says so): PostgreSQL cannot store it.
StorableText = Annotated[str, Field(pattern=r"^[^\x00]*$"), AfterValidator(_storable)]

# Values are taken only in the one form the document names, not in every form pydantic's lax
# mode would turn into one (unix seconds for a time, "1_0" for ten, a UUID without hyphens).
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)", re.I | re.A)
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")


def _written_as(pattern: re.Pattern[str]) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, str) and not pattern.fullmatch(value):
            raise ValueError(f"not in the form {pattern.pattern}")
        return value

    return BeforeValidator(check)


Id = Annotated[uuid.UUID, _written_as(UUID_TEXT)]
Moment = Annotated[datetime, _written_as(RFC3339)]
Count = Annotated[int, _written_as(WHOLE_NUMBER)]


# --- requests ---------------------------------------------------------------------------------


class NewLeadRequest(BaseModel):
    """A lead to create: the contact is found (or made) by phone or e-mail; one is needed."""

    model_config = ConfigDict(extra="forbid")

    business_id: Id
    name: StorableText = Field(default="", max_length=200)
    phone: StorableText = Field(default="", max_length=40)
    email: StorableText = Field(default="", max_length=254)
    channel: Channel = "phone"
    priority: Priority = "normal"
    subject: StorableText = Field(default="", max_length=300)
    message: StorableText = Field(default="", max_length=20_000)
    source: StorableText = Field(default="", max_length=100)


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    cursor: str | None = Field(
        default=None, description="`next_cursor` of the previous page.", max_length=200
    )
    limit: Count = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page.")


class LeadQuery(PageQuery):
    business: Id | None = Field(default=None, description="Only this business's leads.")
    stage: Stage | None = None
    channel: Channel | None = None
    since: Moment | None = Field(
        default=None,
        description="Only leads created at or after this moment (RFC 3339: 2026-11-23T08:00:00Z).",
    )

    @field_validator("since")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        try:
            return value.astimezone(UTC) if value is not None else None
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first UTC moment
            raise ValueError("out of range") from None


class ContactQuery(PageQuery):
    business: Id | None = Field(default=None, description="Only this business's contacts.")


class TaskQuery(PageQuery):
    business: Id | None = Field(default=None, description="Only this business's tasks.")
    status: TaskStatus | None = None


Q = TypeVar("Q", bound=BaseModel)
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


def _invalid(error: ValidationError, default: str) -> Invalid:
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else default
    return Invalid("The field %(name)s is not valid.", field=name, name=name)


def parse_query(model: type[Q], params: Mapping[str, str]) -> Q:
    """A list's filters from the query string; a bad one is 422 naming it."""
    try:
        return model.model_validate(dict(params))
    except ValidationError as error:
        raise _invalid(error, "query") from None


def parse_new_lead(body: bytes) -> NewLeadRequest:
    """The JSON body of a new lead: 400 when it is not JSON, 422 naming a field that is wrong."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise ConsoleError("The body is not valid JSON.", field="body") from None
    if not isinstance(parsed, dict):
        raise Invalid("The body must be a JSON object.", field="body")
    try:
        return NewLeadRequest.model_validate(parsed)
    except ValidationError as error:
        raise _invalid(error, "body") from None


# --- answers ----------------------------------------------------------------------------------


class Answer(BaseModel):
    # Every field is always present in an answer (null when empty), and the document says so.
    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )


class ContactBrief(Answer):
    id: uuid.UUID
    name: str
    phone: str | None = Field(description="E.164, e.g. +972542345678.")
    email: str | None


class LeadOut(Answer):
    id: uuid.UUID
    business_id: uuid.UUID
    contact: ContactBrief
    channel: Channel
    stage: Stage
    priority: Priority
    subject: str
    message: str
    source: str
    created_at: datetime
    stage_changed_at: datetime
    claimed_by_id: uuid.UUID | None
    first_response_at: datetime | None
    respond_by: datetime | None = Field(description="When the first response is due (SLA).")
    closed_at: datetime | None
    deal_value: Decimal | None = Field(description="In shekels, as a decimal string.")
    lost_reason: str


class ContactOut(Answer):
    id: uuid.UUID
    business_id: uuid.UUID
    name: str
    phone: str | None = Field(description="E.164, e.g. +972542345678.")
    email: str | None
    company: str
    address: str
    industry: str
    birthday: date | None
    preferred_channel: str | None = Field(description="One of the lead channels.")
    locale: Literal["he", "en"] | None = Field(
        description="The language the contact is written to; null: the business's language."
    )
    notes: str
    abc_class: Literal["A", "B", "C"] | None
    customer_since: date | None
    lifetime_value: Decimal = Field(description="In shekels, as a decimal string.")
    tags: list[str]
    created_at: datetime
    last_contact_at: datetime | None


class InteractionOut(Answer):
    id: uuid.UUID
    business_id: uuid.UUID
    lead_id: uuid.UUID
    contact_id: uuid.UUID
    user_id: uuid.UUID | None
    kind: InteractionKind
    status: Literal["draft", "done"]
    started_at: datetime
    ended_at: datetime | None
    summary: str
    notes: str
    outcome: str | None
    answers: dict[str, Any] = Field(description="The script's answers, by question.")
    direction: Literal["in", "out"] | None
    delivery_status: Literal["queued", "sent", "delivered", "read", "failed"] | None


class TaskOut(Answer):
    id: uuid.UUID
    business_id: uuid.UUID
    lead_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    assignee_id: uuid.UUID
    title: str
    details: str
    due_at: datetime
    priority: Priority
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None
    acknowledge_by: datetime | None
    acknowledged_at: datetime | None


class LeadPage(Answer):
    items: list[LeadOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class ContactPage(Answer):
    items: list[ContactOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class InteractionPage(Answer):
    items: list[InteractionOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class TaskPage(Answer):
    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last.")


class ApiError(BaseModel):
    error: str = Field(description="What went wrong, in the request's language.")
    field: str | None = Field(default=None, description="The field at fault, when one is.")


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
        cursor_at, cursor_id = decode_cursor(query.cursor)
        statement = statement.where(or_(at < cursor_at, and_(at == cursor_at, row_id < cursor_id)))
    return statement.order_by(at.desc(), row_id.desc()).limit(query.limit + 1)


def _next_cursor(rows: list[Any], query: PageQuery, key: Any) -> tuple[list[Any], str | None]:
    if len(rows) <= query.limit:
        return rows, None
    rows = rows[: query.limit]
    at, row_id = key(rows[-1])
    return rows, encode_cursor(at, row_id)


def _in_business(column: InstrumentedAttribute[Any], business: uuid.UUID | None) -> list[Any]:
    return [column == business] if business is not None else []


# --- leads ------------------------------------------------------------------------------------


LeadRow = Select[Lead, str, str | None, str | None]


def _lead_statement(user: User, *conditions: ColumnElement[bool]) -> LeadRow:
    return (
        select(Lead, Contact.name, Contact.phone, Contact.email)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(may_see(user, Lead.business_id), *conditions)
    )


def _lead_out(lead: Lead, name: str, phone: str | None, email: str | None) -> LeadOut:
    contact = ContactBrief(id=lead.contact_id, name=name, phone=phone, email=email)
    fields = {field: getattr(lead, field) for field in LeadOut.model_fields if field != "contact"}
    return LeadOut(contact=contact, **fields)


async def leads_page(session: AsyncSession, user: User, query: LeadQuery) -> LeadPage:
    conditions = _in_business(Lead.business_id, query.business)
    if query.stage:
        conditions.append(Lead.stage == query.stage)
    if query.channel:
        conditions.append(Lead.channel == query.channel)
    if query.since:
        conditions.append(Lead.created_at >= query.since)
    statement = _paged(_lead_statement(user, *conditions), Lead.created_at, Lead.id, query)
    rows, cursor = _next_cursor(
        list(await session.execute(statement)), query, lambda row: (row[0].created_at, row[0].id)
    )
    return LeadPage(items=[_lead_out(*row) for row in rows], next_cursor=cursor)


async def lead_by_id(session: AsyncSession, user: User, lead_id: str) -> LeadOut:
    row = (await session.execute(_lead_statement(user, Lead.id == parse_id(lead_id)))).first()
    if row is None:
        raise NotFound("Not found.")
    return _lead_out(*row)


async def add_lead(
    session: AsyncSession,
    user: User,
    new: NewLeadRequest,
    *,
    now: datetime,
    idempotency_key: str | None = None,
) -> tuple[LeadOut, bool]:
    """Create a lead (True), or, for a key seen before, answer with the lead it made (False)."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
        raise Invalid("The Idempotency-Key header is not valid.", field="Idempotency-Key")
    business = await get_business(session, user, new.business_id)
    lead_id = (
        uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{user.id}:{idempotency_key}")
        if idempotency_key is not None
        else uuid.uuid4()
    )
    fields = new.model_dump(exclude={"business_id"})

    async def earlier() -> Lead | None:
        return await session.get(Lead, lead_id) if idempotency_key is not None else None

    async def make() -> Lead:
        return await leads.create_lead(
            session,
            user,
            leads.NewLead(business_id=str(business.id), **fields),
            now=now,
            business=business,
            lead_id=lead_id,
        )

    lead, created = await made_once(session, earlier, make)
    return await lead_by_id(session, user, str(lead.id)), created


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


# --- KPIs -------------------------------------------------------------------------------------

ISO_DAY = re.compile(r"\d{4}-\d\d-\d\d", re.A)
Day = Annotated[date, _written_as(ISO_DAY)]


class KpiQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    business: Id = Field(description="The business.")
    from_: Day | None = Field(
        default=None,
        alias="from",
        description="The period's first day in the business's zone (YYYY-MM-DD). With neither "
        "`from` nor `to`: the last 30 days.",
    )
    to: Day | None = Field(
        default=None,
        description=(
            f"The period's last day, included; a period is {periods.MAX_DAYS} days at most."
        ),
    )


class DayCount(Answer):
    day: date
    leads: int


class KpiOut(Answer):
    """The same numbers as the KPI screen and its CSV and XLSX exports, under the same keys.
    They are about the leads that arrived in the period, as they stand now; the tasks are the
    ones open now; `handled` counts the calls and messages logged in the period."""

    business_id: uuid.UUID
    first_day: date = Field(description="The period's first day, in the business's zone.")
    last_day: date = Field(description="The period's last day, included.")
    timezone: str = Field(description="The business's zone (IANA), which the days are in.")
    leads: int
    leads_by_channel: dict[str, int] = Field(description="Leads by channel, every channel named.")
    leads_by_day: list[DayCount] = Field(description="Every day of the period, in order.")
    handled: int = Field(description="Calls and messages the agency logged in the period.")
    answered: int = Field(description="Leads that have had a first response.")
    response_p50: float | None = Field(
        description="Median first response in covered minutes (nearest rank)."
    )
    response_p90: float | None = Field(
        description="90% of the answered leads were answered within this many covered minutes."
    )
    sla_met: int = Field(description="Leads answered by their promised time.")
    sla_missed: int = Field(description="Leads answered late, or not answered and past due.")
    sla_share: float | None = Field(description="sla_met of sla_met + sla_missed, in percent.")
    won: int
    lost: int
    conversion: float | None = Field(description="Won leads of all the leads, in percent.")
    closed: int = Field(description="Leads won or lost.")
    hours_to_close: float | None = Field(description="Average hours from arrival to close.")
    won_with_value: int = Field(description="Won leads with a deal value.")
    deal_value: Decimal | None = Field(description="Average value of those, in shekels.")
    customers: int = Field(description="Contacts with a lead of the period won.")
    repeat_customers: int = Field(description="Of them, contacts with two won leads or more.")
    repeat_rate: float | None = Field(description="repeat_customers of customers, in percent.")
    open_tasks: int = Field(description="The business's open tasks now.")
    overdue_tasks: int = Field(description="Of them, past their due time.")
    task_age_hours: float | None = Field(description="Their average age in hours.")
    oldest_task_hours: float | None = Field(description="The oldest one's age in hours.")
    survey_answers: int = Field(description="Customers' surveys answered in the period.")
    survey_rating: float | None = Field(description="Their average rating, 1 to 5.")
    survey_recommend: float | None = Field(
        description="Of them, the share who would recommend the business, in percent."
    )


async def kpis_for(session: AsyncSession, user: User, query: KpiQuery, *, now: datetime) -> KpiOut:
    """A business's numbers for a period: 404 outside the user's businesses, 422 for a period
    that ends before it starts or is too long."""
    business = await get_business(session, user, query.business)
    if query.from_ is None and query.to is None:
        period = periods.preset(periods.DEFAULT_PRESET, periods.local_today(business, now))
    elif query.from_ is None or query.to is None:
        name = "from" if query.from_ is None else "to"
        raise Invalid("The field %(name)s is not valid.", field=name, name=name)
    else:
        period = periods.check_period(query.from_, query.to)
    found = (await kpis.compute_kpis(session, [business], period, now=now))[business.id]
    report = kpis.KpiReport(business, found, await kpis.feedback_of(session, business, period))
    return KpiOut.model_validate(
        {
            "business_id": business.id,
            "first_day": period.first,
            "last_day": period.last,
            "timezone": found.timezone,
            "leads_by_channel": found.by_channel,
            "leads_by_day": [DayCount(day=day, leads=count) for day, count in found.by_day],
            **{metric.key: metric.value for metric in kpis.metrics(found)},
            **{metric.key: metric.value for metric in report.feedback_metrics},
        }
    )
