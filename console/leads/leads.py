"""Leads: starting one, the inbox queue, claiming, the pipeline."""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from sqlalchemy import Select, and_, bindparam, func, select, true, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload

from console.base.db import dialect_of
from console.base.errors import Conflict, Invalid, NotFound
from console.business.reminder_policy import plan_quote_followups
from console.contacts.contacts import refresh_lifetime_value
from console.leads.surveys import SurveyLinks, start_survey
from console.live import events
from console.people.audit import record_audit
from console.people.tenancy import VIEWER_ID, may_see, may_see_bound, parse_id, visible_to
from console.sla import sla
from models import Business, Contact, Interaction, Lead, Role, SecretaryAssignment, User
from models.contacts import CHANNELS
from models.leads import OPEN_STAGES, STAGES

PAGE_SIZE = 50
PREVIEW_LENGTH = 120
MAX_MESSAGE = 100_000


@dataclass(frozen=True)
class InboxFilters:
    business: str = ""
    channel: str = ""
    stage: str = ""
    holder: str = ""  # "", "mine" or "unassigned"

    def as_query(self, **change: str) -> str:
        values = {**self.__dict__, **change}
        return "&".join(f"{k}={v}" for k, v in values.items() if v)

    def admits(self, business: str, channel: str, stage: str, holder_kind: str) -> bool:
        """Whether leads of these grouped counts pass the filters (their count, unqueried)."""
        return (
            (not self.business or uuid.UUID(self.business) == uuid.UUID(business))
            and self.channel in ("", channel)
            and self.stage in ("", stage)
            and self.holder in ("", holder_kind)
        )


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One line of the queue: what the row shows, flat (plain tuples are cheap to load)."""

    id: uuid.UUID
    business_id: uuid.UUID
    business_name: str
    channel: str
    priority: str
    stage: str
    subject: str
    preview: str
    created_at: datetime
    respond_by: datetime | None
    warn_at: datetime | None
    answered: bool
    claimed_by_id: uuid.UUID | None
    holder_name: str | None
    contact_name: str
    contact_phone: str | None
    contact_email: str | None
    attempts: int  # the contact's arrivals on this lead: repeats joined it
    queue_rank: int
    queue_at: datetime

    @property
    def place(self) -> str:
        """Where the row stands in the queue's order, as the page compares it and a "load
        more" continues after it (`QueuePlace`)."""
        return str(QueuePlace(self.queue_rank, self.queue_at, self.id))

    @staticmethod
    def columns(holder: Any) -> tuple[Any, ...]:
        return (
            Lead.id,
            Lead.business_id,
            Business.name,
            Lead.channel,
            Lead.priority,
            Lead.stage,
            Lead.subject,
            func.substr(Lead.message, 1, PREVIEW_LENGTH),
            Lead.created_at,
            Lead.respond_by,
            Lead.warn_at,
            Lead.first_response_at.is_not(None),
            Lead.claimed_by_id,
            holder.name,
            Contact.name,
            Contact.phone,
            Contact.email,
            Lead.attempts,
            Lead.queue_rank,
            Lead.queue_at,
        )


PLACE_TIME = "%Y%m%d%H%M%S%f"  # fixed width: the page compares places as text


@dataclass(frozen=True)
class QueuePlace:
    """A point in the queue's order `(queue_rank, queue_at, id)`, written `rank.time.id`."""

    rank: int
    at: datetime
    id: uuid.UUID

    def __str__(self) -> str:
        return f"{self.rank}.{self.at.astimezone(UTC).strftime(PLACE_TIME)}.{self.id}"

    @classmethod
    def parse(cls, text: str) -> QueuePlace:
        try:
            rank, at, lead_id = text.split(".")
            when = datetime.strptime(at, PLACE_TIME).replace(tzinfo=UTC)
            return cls(int(rank), when, uuid.UUID(lead_id))
        except ValueError:
            raise Invalid("Unknown place in the queue.", field="after") from None


class UnfinishedCall(NamedTuple):
    """A call she started logging and has not wrapped up, whatever became of its lead."""

    interaction_id: uuid.UUID
    lead_id: uuid.UUID
    kind: str
    started_at: datetime
    contact_name: str
    contact_phone: str | None
    business_name: str
    timezone: str


async def unfinished_calls(session: AsyncSession, user: User) -> list[UnfinishedCall]:
    """Her calls not wrapped up, oldest first: one statement, by a partial index."""
    statement = (
        select(
            Interaction.id,
            Interaction.lead_id,
            Interaction.kind,
            Interaction.started_at,
            Contact.name,
            Contact.phone,
            Business.name,
            Business.timezone,
        )
        .join(Contact, Contact.id == Interaction.contact_id)
        .join(Business, Business.id == Interaction.business_id)
        .where(
            Interaction.user_id == user.id,
            Interaction.status == "draft",
            may_see(user, Interaction.business_id),
        )
        .order_by(Interaction.started_at, Interaction.id)
    )
    return [UnfinishedCall(*row) for row in await session.execute(statement)]


class BusinessChip(NamedTuple):
    """A business of hers, as the inbox's filter names it."""

    id: uuid.UUID
    name: str


@dataclass(frozen=True)
class Inbox:
    rows: list[QueueRow]
    total: int  # open leads she may see
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    businesses: list[BusinessChip] = field(default_factory=list)
    matching: int = 0  # of them, those the filters let through
    before: int = 0  # matching leads before the first row shown (a "load more" page)
    unfinished: list[UnfinishedCall] = field(default_factory=list)  # her "mine" list's top

    @property
    def shown(self) -> int:
        """How far down the matching leads the rows reach."""
        return self.before + len(self.rows)

    @property
    def more_after(self) -> str:
        """The place to continue from when matching leads remain below the last row."""
        return self.rows[-1].place if self.rows and self.shown < self.matching else ""


class InboxShape(NamedTuple):
    """What decides the inbox's statements (the values go in as parameters): the viewer's role,
    which filters are set, and whether the page continues after a place."""

    role: str
    business: bool
    channel: bool
    stage: bool
    holder: str
    after: bool
    per_business: bool = False  # the page a LATERAL per business (PostgreSQL, not an admin)


class InboxStatements(NamedTuple):
    rows: Select[Any]
    counts: Select[uuid.UUID, str, str, uuid.UUID | None, int]
    before: Select[int]  # the matching leads up to a place
    businesses: Select[uuid.UUID, str]


# A place's parts as parameters, typed as the columns they are compared with.
AFTER = tuple_(
    bindparam("after_rank", type_=Lead.queue_rank.type),
    bindparam("after_at", type_=Lead.queue_at.type),
    bindparam("after_id", type_=Lead.id.type),
)


def _page_per_business(shape: InboxShape, chosen: list[Any], order: Any) -> Select[Any]:
    """PostgreSQL's planner takes her businesses for the table's average one (8 open leads where
    hers hold 700): it read all 7,000 by the index and sorted them for the top 50. A page of
    each business she may see (a LATERAL, stopped after 50 by the index's order), merged."""
    visible = visible_to(VIEWER_ID, shape.role).subquery()
    page = (
        select(Lead.id, Lead.queue_rank, Lead.queue_at)
        .where(Lead.business_id == next(iter(visible.c)), *chosen)
        .order_by(Lead.queue_rank, Lead.queue_at, Lead.id)
        .limit(PAGE_SIZE)
    )
    if shape.after:
        page = page.where(order > AFTER)
    pages = page.lateral()
    return (
        select(pages.c.id)
        .select_from(visible)
        .join(pages, true())
        .order_by(pages.c.queue_rank, pages.c.queue_at, pages.c.id)
        .limit(PAGE_SIZE)
    )


@functools.cache
def inbox_statements(shape: InboxShape) -> InboxStatements:
    """The inbox's statements for one shape, built once per process: building and hashing them
    per request cost about as much as SQLite's running them. Their parameters: `viewer_id`, and
    `business`, `channel`, `stage` and the `after_*` of a place where the shape has them."""
    order = tuple_(Lead.queue_rank, Lead.queue_at, Lead.id)
    open_leads = and_(Lead.closed_at.is_(None), may_see_bound(shape.role, Lead.business_id))
    chosen = [open_leads]
    if shape.business:
        chosen.append(Lead.business_id == bindparam("business", type_=Lead.business_id.type))
    if shape.channel:
        chosen.append(Lead.channel == bindparam("channel"))
    if shape.stage:
        chosen.append(Lead.stage == bindparam("stage"))
    if shape.holder == "mine":
        chosen.append(Lead.claimed_by_id == VIEWER_ID)
    elif shape.holder == "unassigned":
        chosen.append(Lead.claimed_by_id.is_(None))
    # The page's ids come from the covering index alone; only those rows are then joined.
    # SQLite reads it a business at a time and stops each after a page; left to its planner it
    # reads every open lead of hers by another index and sorts them.
    page_ids = (
        select(Lead.id)
        .with_hint(Lead, "INDEXED BY ix_leads_open_queue", "sqlite")
        .where(*chosen)
        .order_by(Lead.queue_rank, Lead.queue_at, Lead.id)
        .limit(PAGE_SIZE)
    )
    if shape.after:
        page_ids = page_ids.where(order > AFTER)
    if shape.per_business:
        page_ids = _page_per_business(shape, chosen, order)
    holder = aliased(User)
    rows = (
        select(*QueueRow.columns(holder))
        .join(Contact, Contact.id == Lead.contact_id)
        .join(Business, Business.id == Lead.business_id)
        .outerjoin(holder, holder.id == Lead.claimed_by_id)
        .where(Lead.id.in_(page_ids.scalar_subquery()))
        .order_by(Lead.queue_rank, Lead.queue_at, Lead.id)
    )
    # Grouped in the order of their own index, so no open lead is sorted; by holder, whose kind
    # (hers, nobody's, another's) is told here.
    counts = (
        select(Lead.business_id, Lead.channel, Lead.stage, Lead.claimed_by_id, func.count())
        .with_hint(Lead, "INDEXED BY ix_leads_open_counts", "sqlite")
        .where(open_leads)
        .group_by(Lead.business_id, Lead.channel, Lead.stage, Lead.claimed_by_id)
    )
    before = (
        select(func.count())
        .select_from(Lead)
        .with_hint(Lead, "INDEXED BY ix_leads_open_queue", "sqlite")
        .where(*chosen, order <= AFTER)
    )
    businesses = (
        select(Business.id, Business.name)
        .where(may_see_bound(shape.role, Business.id))
        .order_by(Business.name)
    )
    return InboxStatements(rows, counts, before, businesses)


async def inbox(session: AsyncSession, user: User, filters: InboxFilters, after: str = "") -> Inbox:
    """Open leads of the user's businesses, most urgent first, with counts for every filter;
    `after` a place (`QueuePlace`) continues the queue below it, a page at a time.

    Three statements whatever the data size: the page of rows (contact, business and holder
    joined in), the grouped counts, and the user's businesses; a page after a place counts the
    leads before it too.
    """
    place = QueuePlace.parse(after) if after else None
    values = {"viewer_id": user.id, **_filter_values(filters)}
    if place is not None:
        values.update(after_rank=place.rank, after_at=place.at, after_id=place.id)
    shape = InboxShape(
        user.role,
        "business" in values,
        "channel" in values,
        "stage" in values,
        filters.holder,
        place is not None,
        dialect_of(session) == "postgresql" and user.role != Role.ADMIN,
    )
    statements = inbox_statements(shape)
    rows = [QueueRow(*row) for row in await session.execute(statements.rows, values)]
    counts: dict[str, Counter[str]] = {
        "business": Counter(),
        "channel": Counter(),
        "stage": Counter(),
        "holder": Counter(),
    }
    matching = 0
    for business_id, channel, stage, holder_id, n in await session.execute(
        statements.counts, values
    ):
        kind = "mine" if holder_id == user.id else "unassigned" if holder_id is None else "others"
        counts["business"][str(business_id)] += n
        counts["channel"][channel] += n
        counts["stage"][stage] += n
        counts["holder"][kind] += n
        if filters.admits(str(business_id), channel, stage, kind):
            matching += n
    total = sum(counts["holder"].values())
    before = 0
    if place is not None:
        before = await session.scalar(statements.before, values) or 0
    businesses = [
        BusinessChip(*row) for row in await session.execute(statements.businesses, values)
    ]
    mine_first_page = filters.holder == "mine" and place is None
    return Inbox(
        rows=rows,
        total=total,
        counts=counts,
        businesses=businesses,
        matching=matching,
        before=before,
        unfinished=await unfinished_calls(session, user) if mine_first_page else [],
    )


def _filter_values(filters: InboxFilters) -> dict[str, Any]:
    """The filters' values as the inbox's statements take them; an unknown one is refused."""
    values: dict[str, Any] = {}
    if filters.business:
        try:
            values["business"] = uuid.UUID(filters.business)
        except ValueError:
            raise Invalid("Unknown business.", field="business") from None
    if filters.channel:
        if filters.channel not in CHANNELS:
            raise Invalid("Unknown channel.", field="channel")
        values["channel"] = filters.channel
    if filters.stage:
        if filters.stage not in OPEN_STAGES:
            raise Invalid("Unknown stage.", field="stage")
        values["stage"] = filters.stage
    if filters.holder not in ("", "mine", "unassigned"):
        raise Invalid("Unknown holder filter.", field="holder")
    return values


@functools.cache
def _lead_statement(role: str) -> Select[Lead]:
    """`get_lead`'s statement, built once per role: every action on a lead reads it."""
    return (
        select(Lead)
        .where(Lead.id == bindparam("lead_id"), may_see_bound(role, Lead.business_id))
        .options(joinedload(Lead.contact), joinedload(Lead.business), joinedload(Lead.claimed_by))
        .execution_options(populate_existing=True)
    )


async def get_lead(session: AsyncSession, user: User, lead_id: str | uuid.UUID) -> Lead:
    """A lead of the user's businesses, with its contact, business and holder loaded, in one
    statement (loading them after it, as a refresh does, took four more)."""
    values = {"lead_id": parse_id(lead_id), "viewer_id": user.id}
    lead = await session.scalar(_lead_statement(user.role), values)
    if lead is None:
        raise NotFound("Not found.")
    return lead


# A claim younger than this, met by another secretary, was a race she lost by a moment.
JUST_TAKEN = timedelta(minutes=1)


class HeldByAnother(Conflict):
    """Another secretary holds this open lead: it names her, so the page can offer to ask her."""

    def __init__(self, message: str, *, holder: str, holder_id: uuid.UUID | None) -> None:
        super().__init__(message, field="holder", holder=holder)
        self.holder_id = holder_id

    @classmethod
    def of(cls, lead: Lead, now: datetime) -> HeldByAnother:
        holder = lead.claimed_by.name if lead.claimed_by else "?"
        taken = lead.claimed_at
        if taken is not None and taken.tzinfo is None:
            taken = taken.replace(tzinfo=UTC)
        if taken is not None and now - taken < JUST_TAKEN:
            return HeldByAnother(
                "%(holder)s took this lead a moment ago.",
                holder=holder,
                holder_id=lead.claimed_by_id,
            )
        return HeldByAnother(
            "%(holder)s is handling this lead.", holder=holder, holder_id=lead.claimed_by_id
        )


def held_by_another(lead: Lead, user: User) -> bool:
    """The one rule of a claim: an open lead that a secretary holds is hers alone to answer,
    note, move or call on; an admin may act on any (and reassign it)."""
    return (
        lead.closed_at is None
        and lead.claimed_by_id is not None
        and lead.claimed_by_id != user.id
        and user.role != Role.ADMIN
    )


async def lead_to_act_on(
    session: AsyncSession, user: User, lead_id: str | uuid.UUID, *, now: datetime
) -> Lead:
    """The lead for a reply, a note, a stage or a call of `user`. An open lead nobody holds is
    taken first, by the claim's own conditional UPDATE, so of two secretaries acting at the
    same moment exactly one goes on; held by another, it is refused with her name."""
    lead_uuid = parse_id(lead_id)
    taken = user.role == Role.SECRETARY and await _take_if_free(session, user, lead_uuid, now)
    lead = await get_lead(session, user, lead_uuid)  # read after the take: her name on it
    if taken:
        await events.record(
            session, lead.business_id, "lead.claimed", at=now, lead_id=lead.id, user_id=user.id
        )
    if held_by_another(lead, user):
        raise HeldByAnother.of(lead, now)
    return lead


async def _take_if_free(
    session: AsyncSession, user: User, lead_uuid: uuid.UUID, now: datetime
) -> bool:
    """The claim's one conditional UPDATE: the open lead becomes the user's if nobody holds it
    (of two at once, exactly one gets it). Whether it did."""
    result = await session.execute(
        update(Lead)
        .where(
            Lead.id == lead_uuid,
            Lead.claimed_by_id.is_(None),
            Lead.closed_at.is_(None),
            may_see(user, Lead.business_id),
        )
        .values(claimed_by_id=user.id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


async def claim_lead(
    session: AsyncSession, user: User, lead_id: str | uuid.UUID, *, now: datetime
) -> Lead:
    """Take a lead. One conditional UPDATE decides, so of two at once exactly one wins; the
    other is told who holds it. Claiming one's own lead again changes nothing."""
    lead_uuid = parse_id(lead_id)
    taken = await _take_if_free(session, user, lead_uuid, now)
    lead = await get_lead(session, user, lead_uuid)
    if taken:
        await events.record(
            session, lead.business_id, "lead.claimed", at=now, lead_id=lead.id, user_id=user.id
        )
        return lead
    if lead.claimed_by_id == user.id:
        return lead
    if lead.closed_at is not None:
        raise Conflict("This lead is closed already.")
    raise HeldByAnother.of(lead, now)


async def release_lead(
    session: AsyncSession, user: User, lead_id: str | uuid.UUID, *, now: datetime
) -> Lead:
    """Give a lead back to the queue; only its holder (or an admin) can."""
    lead = await get_lead(session, user, lead_id)
    if lead.claimed_by_id is None:
        return lead
    if lead.claimed_by_id != user.id and user.role != Role.ADMIN:
        raise Conflict("Only the secretary who holds a lead can release it.")
    lead.claimed_by_id = None
    lead.claimed_at = None
    await session.flush()
    await session.refresh(lead, ["claimed_by"])
    await events.record(session, lead.business_id, "lead.released", at=now, lead_id=lead.id)
    return lead


async def reassign_lead(
    session: AsyncSession,
    admin: User,
    lead_id: str | uuid.UUID,
    secretary_id: str,
    *,
    now: datetime,
) -> Lead:
    """An admin hands a lead to a secretary who serves its business."""
    if admin.role != Role.ADMIN:
        raise NotFound("Not found.")
    lead = await get_lead(session, admin, lead_id)
    secretary = await _serving(session, lead.business_id, secretary_id)
    if secretary is None:
        raise Invalid("Pick a secretary who serves this business.", field="secretary")
    was = lead.claimed_by_id
    lead.claimed_by_id = secretary.id
    lead.claimed_at = now
    await session.flush()
    await session.refresh(lead, ["claimed_by"])
    await events.record(
        session, lead.business_id, "lead.claimed", at=now, lead_id=lead.id, user_id=secretary.id
    )
    await _audit_claim(session, admin, lead, "lead.reassigned", now, was=was, to=secretary.id)
    return lead


async def _serving(session: AsyncSession, business_id: uuid.UUID, user_id: str) -> User | None:
    """The active secretary of this id who serves the business, if she is one."""
    return await session.scalar(
        select(User)
        .join(SecretaryAssignment, SecretaryAssignment.user_id == User.id)
        .where(
            User.id == parse_id(user_id),
            User.active.is_(True),
            SecretaryAssignment.business_id == business_id,
        )
    )


async def ask_to_take_over(
    session: AsyncSession, user: User, lead_id: str | uuid.UUID, *, now: datetime
) -> Lead:
    """She asks the holder for the lead: the holder's lead page asks her live (give it / keep
    it). A lead nobody holds is simply taken."""
    if user.role == Role.OWNER:
        raise NotFound("Not found.")
    lead = await get_lead(session, user, lead_id)
    if lead.closed_at is not None:
        raise Conflict("This lead is closed already.")
    if lead.claimed_by_id is None:
        return await claim_lead(session, user, lead.id, now=now)
    if lead.claimed_by_id == user.id:
        return lead
    holder = lead.claimed_by
    await events.record(
        session,
        lead.business_id,
        "lead.takeover_asked",
        at=now,
        lead_id=lead.id,
        user_id=user.id,
        user_name=user.name,
        holder_id=lead.claimed_by_id,
        holder_name=holder.name if holder else "",
    )
    await _audit_claim(session, user, lead, "lead.takeover_asked", now, holder=lead.claimed_by_id)
    return lead


async def answer_takeover(
    session: AsyncSession,
    holder: User,
    lead_id: str | uuid.UUID,
    asker_id: str,
    *,
    give: bool,
    now: datetime,
) -> Lead:
    """The holder answers a request for her lead: given, the claim moves to the one who asked
    (one conditional UPDATE: only while it is still hers); kept, the asker is told."""
    lead = await get_lead(session, holder, lead_id)
    asker = await _serving(session, lead.business_id, asker_id)
    if asker is None:
        raise Invalid("Pick a secretary who serves this business.", field="asker")
    if not give:
        await events.record(
            session,
            lead.business_id,
            "lead.takeover_kept",
            at=now,
            lead_id=lead.id,
            user_id=asker.id,
            holder_id=holder.id,
            holder_name=holder.name,
        )
        await _audit_claim(session, holder, lead, "lead.takeover_kept", now, asker=asker.id)
        return lead
    result = await session.execute(
        update(Lead)
        .where(Lead.id == lead.id, Lead.claimed_by_id == holder.id, Lead.closed_at.is_(None))
        .values(claimed_by_id=asker.id, claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("This lead is no longer yours to give.")
    await session.refresh(lead, ["claimed_by_id", "claimed_at", "claimed_by"])
    await events.record(
        session, lead.business_id, "lead.claimed", at=now, lead_id=lead.id, user_id=asker.id
    )
    await _audit_claim(session, holder, lead, "lead.takeover_given", now, to=asker.id)
    return lead


async def _audit_claim(
    session: AsyncSession, actor: User, lead: Lead, action: str, now: datetime, **details: Any
) -> None:
    await record_audit(
        session,
        action=action,
        now=now,
        actor=actor,
        business_id=lead.business_id,
        subject_type="lead",
        subject_id=lead.id,
        **{key: str(value) if value else "" for key, value in details.items()},
    )


async def secretaries_of(session: AsyncSession, business_id: uuid.UUID) -> list[User]:
    statement = (
        select(User)
        .join(SecretaryAssignment, SecretaryAssignment.user_id == User.id)
        .where(SecretaryAssignment.business_id == business_id, User.active.is_(True))
        .order_by(SecretaryAssignment.is_backup, User.name)
    )
    return list((await session.scalars(statement)).all())


async def move_stage(
    session: AsyncSession,
    user: User,
    lead_id: str | uuid.UUID,
    *,
    stage: str,
    deal_value: str = "",
    lost_reason: str = "",
    now: datetime,
    survey_links: SurveyLinks | None = None,
) -> Lead:
    """Move a lead along the pipeline; won and lost close it (lost needs a reason). A won lead
    gets its customer survey, once (sent when `survey_links` can write the link)."""
    if stage not in STAGES:
        raise Invalid("Unknown stage.", field="stage")
    value = _deal_value(deal_value)
    lead = await lead_to_act_on(session, user, lead_id, now=now)
    if stage == "lost" and not lost_reason.strip():
        raise Invalid("Say why the lead was lost.", field="lost_reason")
    moved = stage != lead.stage
    if moved:
        lead.stage = stage
        lead.stage_changed_at = now
    if value is not None:
        lead.deal_value = value
    lead.lost_reason = lost_reason.strip()[:300] if stage == "lost" else ""
    was_open = lead.closed_at is None
    lead.closed_at = (lead.closed_at or now) if stage in ("won", "lost") else None
    if lead.closed_at is not None:
        await sla.set_alarms(session, {lead.id: None})
        await sla.clear_alerts(session, lead, now)
    elif not was_open and lead.first_response_at is None:
        await sla.start_clock(session, lead, lead.business)  # reopened, still never answered
    if moved:  # a quote is followed up on its days; any other stage stops that
        await plan_quote_followups(session, lead)
    await session.flush()
    if lead.stage == "won" or moved:  # won, un-won or revalued: the card's lifetime value
        await refresh_lifetime_value(session, [lead.contact_id])
    if moved and stage == "won":
        await start_survey(session, lead, links=survey_links, now=now)
    kind = "lead.closed" if was_open and lead.closed_at else "lead.updated"
    await events.record(session, lead.business_id, kind, at=now, lead_id=lead.id)
    return lead


def _deal_value(raw: str) -> Decimal | None:
    if not raw.strip():
        return None
    try:
        value = Decimal(raw.strip().replace(",", "").replace("₪", ""))
    except InvalidOperation:
        raise Invalid("Enter the deal value in shekels.", field="deal_value") from None
    if not value.is_finite() or value < 0 or value >= Decimal("1e10"):
        raise Invalid("Enter the deal value in shekels.", field="deal_value")
    return value.quantize(Decimal("0.01"))
