"""The owner's portal: what the agency handled for his businesses (filtered, searched, a page at
a time), a lead as he reads it, and the tasks handed to him. Each view is a fixed number of
statements whatever the page holds: rows come back flat, with the rating joined in, and the
script versions their answers were given against are loaded in one statement."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from console.base.db import dialect_of
from console.base.errors import Invalid, NotFound
from console.base.newest import newest_per_business
from console.business.periods import filter_day
from console.leads.feedback import comments_of_lead, comments_of_tasks
from console.leads.leads import get_lead
from console.people.audit import Actor, record_lead_view
from console.people.availability import Away, away_now, default_until, describe
from console.people.tenancy import (
    VIEWER_ID,
    may_see_bound,
    parse_id,
    permissions_of,
    scoped,
    visible_businesses,
    visible_to,
)
from console.tasks.tasks import my_tasks, tasks_of_lead
from console.voice import recordings
from models import (
    Business,
    Comment,
    Contact,
    Interaction,
    InteractionRating,
    Lead,
    Role,
    Script,
    Task,
    User,
)
from models.contacts import CHANNELS
from models.leads import OUTCOMES, STAGES
from models.recordings import Recording

PAGE_SIZE = 20
MAX_PAGE = 500
SEARCH_LENGTH = 100
LEAD_HANDLED_LIMIT = 200
DEFAULT_TIMEZONE = "Asia/Jerusalem"
_PHONE_LIKE = re.compile(r"[0-9\s\-+().]+")


@dataclass(frozen=True, slots=True)
class HandledRow:
    """One call, message or note the agency finished for the owner, with its lead and rating."""

    id: uuid.UUID
    lead_id: uuid.UUID
    business_id: uuid.UUID
    business_name: str
    timezone: str
    contact_name: str
    contact_phone: str | None
    subject: str
    channel: str
    stage: str
    lead_created_at: datetime
    first_response_at: datetime | None
    respond_by: datetime | None
    secretary_name: str
    kind: str
    outcome: str | None
    summary: str
    notes: str
    answers: dict[str, Any]
    script_id: uuid.UUID | None
    script_version: int | None
    started_at: datetime
    ended_at: datetime | None
    stars: int | None
    rating_comment: str | None
    # The questions of the script version the answers were given against.
    questions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def answered_within_a_minute(self) -> bool:
        return bool(
            self.first_response_at
            and self.first_response_at - self.lead_created_at < timedelta(minutes=1)
        )

    @property
    def answered_late(self) -> bool:
        return bool(
            self.first_response_at and self.respond_by and self.first_response_at > self.respond_by
        )


def _handled_statement() -> Select[*tuple[Any, ...]]:
    """Finished interactions by the agency's people (not what came in, not the owner's own)."""
    secretary = aliased(User)
    return (
        select(
            Interaction.id,
            Interaction.lead_id,
            Interaction.business_id,
            Business.name,
            Business.timezone,
            Contact.name,
            Contact.phone,
            Lead.subject,
            Lead.channel,
            Lead.stage,
            Lead.created_at,
            Lead.first_response_at,
            Lead.respond_by,
            secretary.name,
            Interaction.kind,
            Interaction.outcome,
            Interaction.summary,
            Interaction.notes,
            Interaction.answers,
            Interaction.script_id,
            Interaction.script_version,
            Interaction.started_at,
            Interaction.ended_at,
            InteractionRating.stars,
            InteractionRating.comment,
        )
        .join(Lead, Lead.id == Interaction.lead_id)
        .join(Contact, Contact.id == Interaction.contact_id)
        .join(Business, Business.id == Interaction.business_id)
        .join(secretary, secretary.id == Interaction.user_id)
        .outerjoin(InteractionRating, InteractionRating.interaction_id == Interaction.id)
        .where(*_handled_by(secretary))
    )


def _handled_by(secretary: Any) -> list[ColumnElement[bool]]:
    return [
        Interaction.status == "done",
        or_(Interaction.direction.is_(None), Interaction.direction != "in"),
        secretary.role != Role.OWNER,
    ]


def _handled_ids(*, with_lead: bool) -> Select[uuid.UUID]:
    """The ids of the handled interactions, with their lead and contact joined only when a
    filter reads them (whose they may be is `_page_ids`'s)."""
    secretary = aliased(User)
    statement = select(Interaction.id).join(secretary, secretary.id == Interaction.user_id)
    if with_lead:
        statement = statement.join(Lead, Lead.id == Interaction.lead_id).join(
            Contact, Contact.id == Interaction.contact_id
        )
    return statement.where(*_handled_by(secretary))


_NEWEST_FIRST = (Interaction.started_at.desc(), Interaction.id.desc())


def _page_ids(
    ids: Select[uuid.UUID], role: str, dialect: str, *, offset: int, limit: int
) -> Select[uuid.UUID]:
    """A page of `ids` within the businesses a role's user may see (the viewer a parameter),
    newest first. On PostgreSQL a page per business (`newest_per_business`, on
    `ix_interactions_business_started_id`): as an IN list it read every handled interaction of
    them (a thousand rows of a busy owner's for a page of 21). SQLite has no LATERAL, and an
    admin sees every business: those are read as one list."""
    if dialect != "postgresql" or role == Role.ADMIN:
        return (
            ids.where(may_see_bound(role, Interaction.business_id))
            .order_by(*_NEWEST_FIRST)
            .offset(offset)
            .limit(limit)
        )
    visible = visible_to(VIEWER_ID, role).subquery("visible")
    return newest_per_business(
        ids,
        Interaction.business_id,
        Interaction.started_at,
        Interaction.id,
        visible,
        limit=limit,
        offset=offset,
    )


def _rows_of(ids: Select[uuid.UUID]) -> Select[*tuple[Any, ...]]:
    """The whole rows of the page whose ids a narrow statement chose. The sort and the limit
    run over ids alone: sorting every handled interaction of his businesses with its notes,
    answers and joined columns was what the portal paid, and it grew with his history."""
    chosen = ids.subquery("page_ids")
    return (
        _handled_statement().where(Interaction.id.in_(select(chosen.c.id))).order_by(*_NEWEST_FIRST)
    )


@functools.cache
def _first_page(role: str, dialect: str) -> Select[*tuple[Any, ...]]:
    """The review as the portal opens it (no filter, the first page): built once per role and
    database, as every opening of the portal reads it."""
    ids = _handled_ids(with_lead=False)
    return _rows_of(_page_ids(ids, role, dialect, offset=0, limit=PAGE_SIZE + 1))


_SCRIPT_AT = [f.name for f in fields(HandledRow)].index("script_id")


async def _with_questions(session: AsyncSession, rows: list[Any]) -> list[HandledRow]:
    """The rows, each with the questions of its script version: one statement for all."""
    script_ids = {row[_SCRIPT_AT] for row in rows if row[_SCRIPT_AT] is not None}
    questions: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if script_ids:
        found = await session.execute(
            select(Script.id, Script.questions).where(Script.id.in_(script_ids))
        )
        questions = {script_id: list(asked) for script_id, asked in found}
    return [HandledRow(*(*row, questions.get(row[_SCRIPT_AT], []))) for row in rows]


async def handled_row(
    session: AsyncSession, business_id: str, interaction_id: str
) -> HandledRow | None:
    """One row for the live portal (the hub has already checked who may see the business)."""
    statement = _handled_statement().where(
        Interaction.id == uuid.UUID(interaction_id),
        Interaction.business_id == uuid.UUID(business_id),
    )
    rows = list(await session.execute(statement))
    found = await _with_questions(session, rows)
    return found[0] if found else None


async def rated_row(session: AsyncSession, user: User, interaction_id: uuid.UUID) -> HandledRow:
    """One row of the user's businesses, after he rated it."""
    statement = scoped(
        _handled_statement().where(Interaction.id == interaction_id), user, Interaction.business_id
    )
    found = await _with_questions(session, list(await session.execute(statement)))
    if not found:
        raise NotFound("Not found.")
    return found[0]


# --- the review -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewFilters:
    """The review's filters as the query string carries them (`from`, `to`: the business's
    local dates, inclusive)."""

    start: str = ""
    end: str = ""
    channel: str = ""
    stage: str = ""
    outcome: str = ""
    business: str = ""
    q: str = ""
    page: int = 1

    @classmethod
    def of(cls, params: Mapping[str, str]) -> ReviewFilters:
        page = params.get("page", "1")
        return cls(
            start=params.get("from", "").strip(),
            end=params.get("to", "").strip(),
            channel=params.get("channel", ""),
            stage=params.get("stage", ""),
            outcome=params.get("outcome", ""),
            business=params.get("business", ""),
            q=params.get("q", "").strip()[:SEARCH_LENGTH],
            page=int(page) if page.isdigit() and 0 < int(page) <= MAX_PAGE else 1,
        )

    def query(self, **change: Any) -> str:
        """The query string of these filters with some changed (a page link, a chip)."""
        values = replace(self, **change)
        pairs = {
            "q": values.q,
            "from": values.start,
            "to": values.end,
            "channel": values.channel,
            "stage": values.stage,
            "outcome": values.outcome,
            "business": values.business,
            "page": str(values.page) if values.page > 1 else "",
        }
        return urlencode({name: value for name, value in pairs.items() if value})

    @property
    def narrowed(self) -> bool:
        """Anything chosen beyond the first page of everything."""
        return bool(self.query())


@dataclass(frozen=True)
class Review:
    filters: ReviewFilters
    rows: list[HandledRow]
    more: bool
    businesses: list[Business]
    today: date  # in the zone the dates are read in
    # New rows belong at the top of this page (no search, outcome, past period or later page),
    # so the live console may add them.
    live: bool

    @property
    def week_start(self) -> date:
        return self.today - timedelta(days=6)


def _search(term: str) -> ColumnElement[bool]:
    """Contact name, subject, summary or notes containing the words; a phone typed any usual
    way (054-2345678, +972 54 234 5678) matches the stored E.164."""
    conditions = [
        Contact.name.icontains(term, autoescape=True),
        Lead.subject.icontains(term, autoescape=True),
        Interaction.summary.icontains(term, autoescape=True),
        Interaction.notes.icontains(term, autoescape=True),
    ]
    digits = re.sub(r"\D", "", term).lstrip("0")
    if len(digits) >= 3 and _PHONE_LIKE.fullmatch(term):
        conditions.append(Contact.phone.contains(digits, autoescape=True))
    return or_(*conditions)


async def review(
    session: AsyncSession, user: User, filters: ReviewFilters, *, now: datetime
) -> Review:
    """A page of what was handled for the user's businesses, newest first: three statements
    (his businesses, the page's rows with their leads, contacts and ratings, the questions of
    the script versions used)."""
    businesses = await visible_businesses(session, user)
    chosen = None
    if filters.business:
        chosen = next((b for b in businesses if str(b.id) == filters.business), None)
        if chosen is None:
            raise NotFound("No such business.")
    if filters.channel and filters.channel not in CHANNELS:
        raise Invalid("Unknown channel.", field="channel")
    if filters.stage and filters.stage not in STAGES:
        raise Invalid("Unknown stage.", field="stage")
    if filters.outcome and filters.outcome not in OUTCOMES:
        raise Invalid("Unknown outcome.", field="outcome")
    start, end = filter_day(filters.start, "from"), filter_day(filters.end, "to")
    if start and end and end < start:
        raise Invalid("The period ends before it starts.", field="to")
    reference = chosen or (businesses[0] if businesses else None)
    zone = ZoneInfo(reference.timezone if reference else DEFAULT_TIMEZONE)
    today = now.astimezone(zone).date()

    filtered = chosen or start or end or filters.channel or filters.stage or filters.outcome
    if not (filtered or filters.q) and filters.page == 1:
        statement = _first_page(user.role, dialect_of(session))
    else:
        statement = _filtered(user.role, dialect_of(session), filters, chosen, start, end, zone)
    rows = list(await session.execute(statement, {"viewer_id": user.id}))
    live = not (filters.q or filters.outcome or filters.page > 1 or (end and end < today))
    return Review(
        filters=filters,
        rows=await _with_questions(session, rows[:PAGE_SIZE]),
        more=len(rows) > PAGE_SIZE,
        businesses=businesses,
        today=today,
        live=live,
    )


def _filtered(
    role: str,
    dialect: str,
    filters: ReviewFilters,
    chosen: Business | None,
    start: date | None,
    end: date | None,
    zone: ZoneInfo,
) -> Select[*tuple[Any, ...]]:
    """The review's page with the filters set, built per request."""
    with_lead = bool(filters.channel or filters.stage or filters.q)
    statement = _handled_ids(with_lead=with_lead)
    if chosen is not None:
        statement = statement.where(Interaction.business_id == chosen.id)
    if start:
        statement = statement.where(Interaction.started_at >= _midnight(start, zone))
    if end:
        statement = statement.where(Interaction.started_at < _midnight(end + timedelta(1), zone))
    if filters.channel:
        statement = statement.where(Lead.channel == filters.channel)
    if filters.stage:
        statement = statement.where(Lead.stage == filters.stage)
    if filters.outcome:
        statement = statement.where(Interaction.outcome == filters.outcome)
    if filters.q:
        statement = statement.where(_search(filters.q))
    offset = (filters.page - 1) * PAGE_SIZE
    return _rows_of(_page_ids(statement, role, dialect, offset=offset, limit=PAGE_SIZE + 1))


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


# --- a lead, as the owner reads it --------------------------------------------------------------


@dataclass(frozen=True)
class OwnerLead:
    lead: Lead
    handled: list[HandledRow]
    tasks: list[Task]
    comments: list[Comment]
    recordings: list[Recording]


async def owner_lead(
    session: AsyncSession, viewer: Actor, lead_id: str | uuid.UUID, *, opened: bool = True
) -> OwnerLead:
    """The lead, everything handled on it, its tasks and the comments on it: outside the
    viewer's businesses, 404. The opening is in the audit log (not when the page is drawn again
    for a form he sent from it: `opened=False`)."""
    user = viewer.person
    lead = await get_lead(session, user, lead_id)
    statement = (
        _handled_statement()
        .where(Interaction.lead_id == lead.id)
        .order_by(Interaction.started_at.desc(), Interaction.id.desc())
        .limit(LEAD_HANDLED_LIMIT)
    )
    handled = await _with_questions(session, list(await session.execute(statement)))
    view = OwnerLead(
        lead=lead,
        handled=handled,
        tasks=await tasks_of_lead(session, user, lead),
        comments=await comments_of_lead(session, lead.id),
        recordings=await recordings.of_lead(session, lead.id),
    )
    if opened:
        await record_lead_view(session, lead.id, lead.business_id, actor=viewer, via="portal")
    return view


# --- the tasks handed to him ------------------------------------------------------------------


@dataclass(frozen=True)
class OwnerTasks:
    tasks: list[Task]
    comments: dict[uuid.UUID, list[Comment]]


async def owner_tasks(session: AsyncSession, user: User) -> OwnerTasks:
    """His open tasks, soonest due first, with their comments: two statements."""
    found = await my_tasks(session, user, status="open")
    return OwnerTasks(found, await comments_of_tasks(session, [task.id for task in found]))


async def owner_task(session: AsyncSession, user: User, task_id: str | uuid.UUID) -> OwnerTasks:
    """One task handed to him, as its card is drawn again after he answered it."""
    statement = (
        scoped(select(Task), user, Task.business_id)
        .where(Task.id == parse_id(task_id), Task.assignee_id == user.id)
        .options(joinedload(Task.business), joinedload(Task.assignee), joinedload(Task.created_by))
        .execution_options(populate_existing=True)
    )
    task = await session.scalar(statement)
    if task is None:
        raise NotFound("Not found.")
    return OwnerTasks([task], await comments_of_tasks(session, [task.id]))


# --- the page ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortalPage:
    review: Review
    tasks: OwnerTasks
    away: Away | None  # his own status, if it holds now
    away_text: str
    timezone: str  # his first business's: the zone his status's end is typed in
    default_until: str
    # what he may do in each of his businesses (tenancy.PERMISSIONS), for the links offered
    permissions: dict[uuid.UUID, frozenset[str]] = field(default_factory=dict)


async def portal_page(
    session: AsyncSession, user: User, filters: ReviewFilters, *, now: datetime, tasks: bool = True
) -> PortalPage:
    """The owner's home: his status, his open tasks, what he may do in each business and the
    review; six statements (three when only the review is asked for)."""
    found = await review(session, user, filters, now=now)
    timezone = found.businesses[0].timezone if found.businesses else DEFAULT_TIMEZONE
    away = away_now(user, now)
    return PortalPage(
        review=found,
        tasks=await owner_tasks(session, user) if tasks else OwnerTasks([], {}),
        away=away,
        away_text=describe(away, timezone, now) if away else "",
        timezone=timezone,
        default_until=default_until(timezone, now),
        permissions=await permissions_of(session, user) if tasks else {},
    )


async def owner_timezone(session: AsyncSession, user: User) -> str:
    """The zone an owner's times are typed in: his first business's."""
    businesses = await visible_businesses(session, user)
    return businesses[0].timezone if businesses else DEFAULT_TIMEZONE
