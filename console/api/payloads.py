"""The JSON API v1's models: what a request may say and what an answer holds.

The pydantic models here validate the requests and shape the answers, and the OpenAPI document
(console/api/openapi.py) is generated from the same models, so the two cannot drift apart. The
queries behind them are in console/api/queries.py.
"""

from __future__ import annotations

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

from console.base.errors import ConsoleError, Invalid
from console.business import periods
from models.contacts import CHANNELS
from models.leads import INTERACTION_KINDS, PRIORITIES, STAGES
from models.tasks import TASK_STATUSES

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# A client's Idempotency-Key names the lead it makes: the same key (of the same user) always
# names the same lead id, which the primary key then keeps unique.
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
    calls: int = Field(description="Calls that came in through the SIP server in the period.")
    calls_answered: int = Field(description="Of them, answered by a secretary.")
    calls_abandoned: int = Field(
        description="Of them, the caller hung up before anyone answered (waiting or ringing)."
    )
    calls_missed: int = Field(description="Of them, nobody took (overflow, or failed).")
    calls_rejected: int = Field(
        description="Of them, a secretary declined the ring and nobody answered it after her."
    )
    answer_rate: float | None = Field(
        description=(
            "calls_answered of calls_answered + calls_abandoned + calls_missed + calls_rejected,"
            " in percent."
        )
    )
    abandonment_rate: float | None = Field(description="calls_abandoned of the same, in percent.")
    average_speed_of_answer: float | None = Field(
        description="Average seconds from a call's arrival to its answer."
    )
    average_talk: float | None = Field(description="Average seconds from answer to hang-up.")
    service_level_seconds: int = Field(
        description="The business's service level's N (20 by default: the industry's 80/20)."
    )
    service_level: float | None = Field(
        description="Calls answered within service_level_seconds of arriving, of the same, in "
        "percent."
    )
    survey_answers: int = Field(description="Customers' surveys answered in the period.")
    survey_rating: float | None = Field(description="Their average rating, 1 to 5.")
    survey_recommend: float | None = Field(
        description="Of them, the share who would recommend the business, in percent."
    )


# --- outbound webhooks (an admin's token) -------------------------------------------------------

WebhookEvent = Literal[
    "lead.created",
    "lead.closed",
    "call.ended",
    "task.created",
    "task.done",
    "alert.raised",
    "survey.answered",
]


class NewWebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, AfterValidator(_storable)] = Field(
        min_length=1,
        max_length=2000,
        description="Where to POST each event: http(s), on the public internet.",
    )
    events: list[WebhookEvent] = Field(min_length=1, max_length=7)
    business_id: uuid.UUID | None = Field(
        default=None, description="One business's events only; without it, every business's."
    )


def parse_new_webhook(body: bytes) -> NewWebhookRequest:
    """The JSON body of a new endpoint: 400 when it is not JSON, 422 naming a wrong field."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise ConsoleError("The body is not valid JSON.", field="body") from None
    if not isinstance(parsed, dict):
        raise Invalid("The body must be a JSON object.", field="body")
    try:
        return NewWebhookRequest.model_validate(parsed)
    except ValidationError as error:
        raise _invalid(error, "body") from None


class WebhookDeliveryOut(Answer):
    id: uuid.UUID
    event_type: str
    business_id: uuid.UUID
    status: Literal["queued", "sent", "failed"]
    attempts: int
    response_status: int | None = Field(description="The endpoint's HTTP status, last attempt.")
    response_body: str = Field(description="The start of the endpoint's answer, last attempt.")
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class WebhookOut(Answer):
    id: uuid.UUID
    url: str
    events: list[str]
    business_id: uuid.UUID | None
    created_at: datetime
    paused_at: datetime | None = Field(description="Paused after failing again and again.")
    deliveries: list[WebhookDeliveryOut] = Field(description="The most recent, newest first.")


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret, whsec_…: shown this once only.")


class WebhookList(Answer):
    items: list[WebhookOut]
