"""Everything the lead page shows, loaded in a fixed number of statements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.business.hours import BusinessHours
from console.calendar.appointments import appointments_of_lead
from console.leads.call_notices import LeadNotice, notices_of_lead
from console.leads.canned_replies import canned_replies, fill_reply
from console.leads.feedback import comments_of_lead
from console.leads.leads import get_lead, secretaries_of
from console.leads.replies import ReplyOptions, reply_options
from console.leads.scripts import greeting_parts, published_script
from console.people.audit import Actor, record_lead_view
from console.people.availability import OwnerAway, owners_away
from console.sla.sla import clock_for
from console.tasks.paging import LeadPages, pages_of_lead
from console.tasks.tasks import people_for_hand_off, tasks_of_lead
from console.voice import recordings
from console.voice.calls import CallLine, calls_of_lead
from console.voice.transfers import transfers_of_lead
from models import Business, Comment, Interaction, Lead, Role, Script, Task, User
from models.recordings import Recording
from models.records import Appointment
from models.voice import CallTransfer

# A hand-off is due, unless she says otherwise, two of the business's working hours from now.
DEFAULT_DUE_IN_COVERED_MINUTES = 120


MESSAGE_KINDS = ("whatsapp", "sms", "email")


@dataclass(frozen=True)
class HistoryEntry:
    lead: Lead
    interactions: list[Interaction] = field(default_factory=list)


@dataclass(frozen=True)
class HoursNow:
    """Whether the business is open now, and today's hours in its own wall time."""

    open_now: bool
    today: list[tuple[str, str]]
    kind: str
    holiday: str | None

    @classmethod
    def of(cls, clock: BusinessHours, business: Business, now: datetime) -> HoursNow:
        zone = ZoneInfo(business.timezone)
        today = now.astimezone(zone).date()
        windows = [
            (start.astimezone(zone).strftime("%H:%M"), end.astimezone(zone).strftime("%H:%M"))
            for start, end in clock.windows_on(today)
        ]
        return cls(clock.is_open(now), windows, clock.day_kind(today), clock.holiday_name(today))


@dataclass(frozen=True)
class ContactHistory:
    """Every lead and interaction of the lead's contact, newest first."""

    contact_id: uuid.UUID
    current_lead_id: uuid.UUID
    timezone: str
    entries: list[HistoryEntry]
    scripts_used: dict[int, Script]

    @property
    def conversation(self) -> list[Interaction]:
        """The current lead's messages (WhatsApp, SMS, e-mail), both ways, oldest first: the
        thread the lead page shows as a conversation."""
        for entry in self.entries:
            if entry.lead.id == self.current_lead_id:
                messages = [i for i in entry.interactions if i.kind in MESSAGE_KINDS]
                return sorted(messages, key=lambda i: (i.started_at, i.id))
        return []

    @property
    def unfinished(self) -> list[Interaction]:
        """The calls being logged on the current lead (hers and others'), oldest first."""
        for entry in self.entries:
            if entry.lead.id == self.current_lead_id:
                drafts = [i for i in entry.interactions if i.status == "draft"]
                return sorted(drafts, key=lambda i: (i.started_at, i.id))
        return []

    @property
    def wrapped_up(self) -> bool:
        """A call or message on the current lead was wrapped up: its owners may have been told."""
        for entry in self.entries:
            if entry.lead.id == self.current_lead_id:
                return any(i.status == "done" and i.kind != "note" for i in entry.interactions)
        return False

    def draft_of(self, user: User) -> Interaction | None:
        """The call log `user` has open on the current lead, if any."""
        for entry in self.entries:
            if entry.lead.id == self.current_lead_id:
                for interaction in entry.interactions:
                    if interaction.status == "draft" and interaction.user_id == user.id:
                        return interaction
        return None


@dataclass(frozen=True)
class LeadView:
    lead: Lead
    script: Script | None
    greeting: list[tuple[str, bool]]  # (text, is a name): the names are shown isolated
    history: ContactHistory
    draft: Interaction | None
    tasks: list[Task]
    hand_off_to: list[User]
    secretaries: list[User]
    default_due: str  # two working hours on, as the business's wall time for datetime-local
    hours: HoursNow
    replies: ReplyOptions
    canned: list[tuple[str, str]]  # title, text with the names filled in
    # The business's owners who are away now, as the secretaries read it (the hand-off form
    # warns of it: notices to them wait for their return), and the comments on the lead and
    # its tasks, the owner's among them.
    owners_away: list[OwnerAway] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    appointments: list[Appointment] = field(default_factory=list)  # booked for this lead
    # Its urgent hand-offs' pages: who has it now (console/tasks/paging.py).
    pages: LeadPages = field(default_factory=lambda: LeadPages([]))
    # Its calls through the SIP server, how each went (console/voice/calls.py).
    calls: list[CallLine] = field(default_factory=list)
    # Its calls put through to someone else (console/voice/transfers.py).
    transfers: list[CallTransfer] = field(default_factory=list)
    # Its call recordings and voicemail (console/voice/recordings.py), oldest first.
    recordings: list[Recording] = field(default_factory=list)
    # The owners' messages after its calls, with their delivery (console/leads/call_notices.py).
    owner_notices: list[LeadNotice] = field(default_factory=list)

    @property
    def unfinished(self) -> list[Interaction]:
        return self.history.unfinished

    def away_of(self, user_id: uuid.UUID) -> str:
        return next((away.text for away in self.owners_away if away.user.id == user_id), "")


async def lead_view(
    session: AsyncSession,
    viewer: Actor,
    lead_id: str | uuid.UUID,
    *,
    reply_template: str | None = None,
    opened: bool = True,
) -> LeadView:
    """The lead page for its secretary or an admin; its opening is in the audit log (a form of
    the page refused and drawn again, `opened` False, is no new opening)."""
    user, now = viewer.person, viewer.now
    lead = await get_lead(session, user, lead_id)
    clock = clock_for(lead.business)  # with its exceptions and 24/7, as the SLA counts
    script = await published_script(session, lead.business_id)
    greeting = greeting_parts(
        script.greeting if script else "",
        business=lead.business.name,
        secretary=user.name,
        contact=lead.contact.name,
    )
    history = await contact_history(session, lead)
    hand_off_to = await people_for_hand_off(session, lead.business_id)
    owners = [person for person in hand_off_to if person.role == Role.OWNER]
    lead_tasks = await tasks_of_lead(session, user, lead)
    urgent = any(task.priority == "urgent" for task in lead_tasks)  # only then can it have pages
    view = LeadView(
        lead=lead,
        script=script,
        greeting=greeting,
        history=history,
        draft=history.draft_of(user),
        tasks=lead_tasks,
        hand_off_to=hand_off_to,
        secretaries=(
            await secretaries_of(session, lead.business_id) if user.role == Role.ADMIN else []
        ),
        default_due=_default_due(clock, lead.business, now),
        hours=HoursNow.of(clock, lead.business, now),
        replies=await reply_options(session, lead, template=reply_template, now=now),
        canned=[
            (
                reply.title,
                fill_reply(
                    reply.body,
                    contact=lead.contact.name,
                    business=lead.business.name,
                    secretary=user.name,
                ),
            )
            for reply in await canned_replies(session, lead.business_id, user.locale)
        ],
        owners_away=owners_away(owners, lead.business.timezone, now),
        comments=await comments_of_lead(session, lead.id),
        appointments=await appointments_of_lead(session, lead.id),
        pages=await pages_of_lead(session, lead.id) if urgent else LeadPages([]),
        # only a phone lead can have had a call put through
        transfers=await transfers_of_lead(session, lead.id) if lead.channel == "phone" else [],
        calls=await calls_of_lead(session, lead.id) if lead.channel == "phone" else [],
        recordings=await recordings.of_lead(session, lead.id),
        owner_notices=await notices_of_lead(session, lead.id) if history.wrapped_up else [],
    )
    if opened:
        await record_lead_view(session, lead.id, lead.business_id, actor=viewer)
    return view


# A contact's leads and interactions, newest first: built once, as every lead page and contact
# page reads them.
LEADS_OF_CONTACT = (
    select(Lead).where(Lead.contact_id == bindparam("contact_id")).order_by(Lead.created_at.desc())
)
INTERACTIONS_OF_CONTACT = (
    select(Interaction)
    .where(Interaction.contact_id == bindparam("contact_id"))
    .options(joinedload(Interaction.user))
    .order_by(Interaction.started_at.desc())
)


async def leads_and_interactions(
    session: AsyncSession, contact_id: uuid.UUID
) -> tuple[list[Lead], dict[uuid.UUID, list[Interaction]]]:
    """A contact's leads and, per lead, its interactions, newest first: two statements."""
    values = {"contact_id": contact_id}
    leads = (await session.scalars(LEADS_OF_CONTACT, values)).all()
    interactions = (await session.scalars(INTERACTIONS_OF_CONTACT, values)).all()
    by_lead: dict[uuid.UUID, list[Interaction]] = {}
    for interaction in interactions:
        by_lead.setdefault(interaction.lead_id, []).append(interaction)
    return list(leads), by_lead


async def contact_history(session: AsyncSession, lead: Lead) -> ContactHistory:
    """Three statements: the contact's leads, their interactions, the script versions used."""
    leads, by_lead = await leads_and_interactions(session, lead.contact_id)
    interactions = [i for found in by_lead.values() for i in found]
    versions = {i.script_version for i in interactions if i.script_version is not None}
    scripts_used: dict[int, Script] = {}
    if versions:
        statement = select(Script).where(
            Script.business_id == lead.business_id, Script.version.in_(versions)
        )
        scripts_used = {script.version: script for script in await session.scalars(statement)}
    return ContactHistory(
        contact_id=lead.contact_id,
        current_lead_id=lead.id,
        timezone=lead.business.timezone,
        entries=[HistoryEntry(item, by_lead.get(item.id, [])) for item in leads],
        scripts_used=scripts_used,
    )


def _default_due(clock: BusinessHours, business: Business, now: datetime) -> str:
    """The hand-off form's due time, as the business's wall time for a datetime-local input."""
    try:
        due = clock.add_covered_minutes(now, DEFAULT_DUE_IN_COVERED_MINUTES)
    except ValueError:  # a business with no hours at all
        due = now + timedelta(hours=2)
    return due.astimezone(ZoneInfo(business.timezone)).strftime("%Y-%m-%dT%H:%M")
