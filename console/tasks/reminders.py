"""Follow-up reminders from the reference material, and the "we miss you" list.

A lead at the quote stage is followed up on the business's days (2, 5 and 10 after it entered
the stage); a classed customer once a period of his class (A 14, B 30, C 90 days) after the last
contact or the last reminder; a customer's birthday on the day, or the days before it that
the business chose. Each reminder is a task for the business's secretary (the lead's holder
first) or a notification to its owners, as the business chose, written once under a unique key
(`quote:<lead>:<stage entered>:d<day>`, `abc:<contact>:<due date>`, `birthday:<contact>:<year>`).
The job reads due leads and contacts through the partial indexes on `followup_at` alone (on
PostgreSQL with SKIP LOCKED, so two workers split them) and moves each to its next moment.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.db import after_commit, dialect_of, made_once
from console.base.i18n import format_day, gettext, speaking_to, using_locale
from console.base.scheduler import SweepAt
from console.business.reminder_policy import (
    Birthday,
    ReminderPolicy,
    birthday_due,
    contact_due,
    next_look,
    quote_moments,
    reminder_policies,
    set_reminder_policy,
)
from console.contacts.contacts import display_phone
from console.live import events
from console.people.audit import Actor, record_change
from console.people.tenancy import may_see, parse_id, visible_businesses
from console.tasks.task_notices import notify_user
from console.tasks.task_sla import start_task_clock
from models import Business, Contact, Lead, OwnerMembership, SecretaryAssignment, Task, User

log = logging.getLogger("mazkira.reminders")

SWEEP_LIMIT = 500
SILENT_LIMIT = 200
# A follow-up task is due a day after it is written.
TASK_DUE = timedelta(days=1)

Compose = Callable[[], tuple[str, str]]  # (title, details) in the current language


@dataclass
class FollowupReport:
    """What one run looked at and how many reminders it wrote."""

    leads: int = 0
    contacts: int = 0
    written: int = 0


@dataclass
class _People:
    """The business's secretaries (usual ones first) and owners, active only."""

    secretaries: dict[uuid.UUID, list[User]] = field(default_factory=dict)
    owners: dict[uuid.UUID, list[User]] = field(default_factory=dict)


async def set_reminders(
    session: AsyncSession, actor: Actor, business: Business, wanted: ReminderPolicy
) -> ReminderPolicy:
    """The follow-ups the business wants, and their days, set by `actor` (audited)."""
    policy = await set_reminder_policy(session, business, wanted, now=actor.now)
    await record_change(session, actor, "sla.reminders_set", business)
    return policy


async def remind_followups(
    session: AsyncSession, *, now: datetime, limit: int = SWEEP_LIMIT
) -> FollowupReport:
    """Write the quote and A/B/C follow-ups that are due; safe to run twice or on two workers."""
    lead_statement = (
        select(Lead)
        .where(Lead.followup_at <= now)
        .order_by(Lead.followup_at)
        .limit(limit)
        .options(joinedload(Lead.contact, innerjoin=True))
    )
    contact_statement = (
        select(Contact).where(Contact.followup_at <= now).order_by(Contact.followup_at).limit(limit)
    )
    if dialect_of(session) == "postgresql":
        lead_statement = lead_statement.with_for_update(skip_locked=True, of=Lead)
        contact_statement = contact_statement.with_for_update(skip_locked=True)
    leads = list((await session.scalars(lead_statement)).unique().all())
    contacts = list((await session.scalars(contact_statement)).all())
    report = FollowupReport(leads=len(leads), contacts=len(contacts))
    business_ids = sorted({x.business_id for x in leads} | {x.business_id for x in contacts})
    if not business_ids:
        return report
    policies = await reminder_policies(session, business_ids)
    businesses = {
        b.id: b
        for b in await session.scalars(select(Business).where(Business.id.in_(business_ids)))
    }
    people = await _people_of(session, business_ids)
    for lead in leads:
        policy = policies[lead.business_id]
        if lead.stage != "quote" or lead.closed_at is not None or not policy.quote_followups:
            lead.followup_at = None
            continue
        moments = quote_moments(lead.stage_changed_at, policy)
        passed = [day for day, moment in moments if moment <= now]
        if passed:  # after a pause only the latest day is written: one reminder, not a burst
            report.written += await _remind(
                session,
                businesses[lead.business_id],
                people,
                key=f"quote:{lead.id.hex}:{int(lead.stage_changed_at.timestamp())}:d{passed[-1]}",
                compose=_quote_text(lead, passed[-1]),
                deliver=policy.quote_as,
                holder_id=lead.claimed_by_id,
                lead_id=lead.id,
                now=now,
            )
        lead.followup_at = next((moment for _day, moment in moments if moment > now), None)
    for contact in contacts:
        policy, business = policies[contact.business_id], businesses[contact.business_id]
        due = contact_due(contact, policy)  # None: unclassed or switched off
        if due is not None and due <= now:  # not spoken to since
            assert contact.abc_class is not None
            report.written += await _remind(
                session,
                business,
                people,
                key=f"abc:{contact.id.hex}:{due:%Y%m%d}",
                compose=_class_text(contact, now),
                deliver=policy.class_as,
                holder_id=None,
                lead_id=None,
                high=contact.abc_class == "A",
                now=now,
            )
            contact.followed_up_at = now
        birthday = birthday_due(contact, policy, business.timezone, now)
        if birthday is not None and birthday.remind_at <= now:
            report.written += await _remind(
                session,
                business,
                people,
                key=f"birthday:{contact.id.hex}:{birthday.day:%Y}",
                compose=_birthday_text(contact, birthday),
                deliver=policy.birthday_as,
                holder_id=None,
                lead_id=None,
                now=now,
            )
            # the next look skips this birthday: its reminder is written
            contact.followup_at = next_look(contact, policy, business.timezone, birthday.ends_at)
        else:
            contact.followup_at = next_look(contact, policy, business.timezone, now)
    await session.flush()
    return report


async def _people_of(session: AsyncSession, business_ids: list[uuid.UUID]) -> _People:
    people = _People()
    secretaries = await session.execute(
        select(SecretaryAssignment.business_id, User)
        .join(User, User.id == SecretaryAssignment.user_id)
        .where(SecretaryAssignment.business_id.in_(business_ids), User.active.is_(True))
        .order_by(SecretaryAssignment.is_backup, User.name)
    )
    for business_id, user in secretaries:
        people.secretaries.setdefault(business_id, []).append(user)
    owners = await session.execute(
        select(OwnerMembership.business_id, User)
        .join(User, User.id == OwnerMembership.user_id)
        .where(OwnerMembership.business_id.in_(business_ids), User.active.is_(True))
        .order_by(User.name)
    )
    for business_id, user in owners:
        people.owners.setdefault(business_id, []).append(user)
    return people


async def _remind(
    session: AsyncSession,
    business: Business,
    people: _People,
    *,
    key: str,
    compose: Compose,
    deliver: str,
    holder_id: uuid.UUID | None,
    lead_id: uuid.UUID | None,
    high: bool = False,
    now: datetime,
) -> int:
    """One reminder as the business wants it; how many rows were new (0 for a repeat)."""
    secretaries = people.secretaries.get(business.id, [])
    if deliver == "task" and secretaries:
        holder = next((s for s in secretaries if s.id == holder_id), secretaries[0])
        return int(
            await _write_task(
                session, business, holder, key, compose, lead_id=lead_id, high=high, now=now
            )
        )
    owners = people.owners.get(business.id, [])
    if not owners:
        log.warning("reminder %s of business %s has nobody to go to", key, business.slug)
    new = 0
    for owner in owners:
        with speaking_to(owner):  # by name, in the form and language he or she chose
            title, details = compose()
            hello = gettext("Hello %(name)s,") % {"name": owner.name}
        new += await notify_user(
            session,
            owner,
            key=f"{key}:{owner.id.hex}",
            business_id=business.id,
            subject=title,
            body=f"{hello}\n{business.name}: {title}\n{details}",
            now=now,
        )
    return new


async def _write_task(
    session: AsyncSession,
    business: Business,
    assignee: User,
    key: str,
    compose: Compose,
    *,
    lead_id: uuid.UUID | None,
    high: bool,
    now: datetime,
) -> bool:
    """The reminder as a task, once per key (unique per business in the database)."""

    async def earlier() -> Task | None:
        return await session.scalar(
            select(Task).where(Task.business_id == business.id, Task.request_key == key)
        )

    async def write() -> Task:
        with using_locale(business.locale):
            title, details = compose()
        task = Task(
            business_id=business.id,
            lead_id=lead_id,
            assignee_id=assignee.id,
            title=title[:300],
            details=details,
            due_at=now + TASK_DUE,
            priority="high" if high else "normal",
            created_at=now,
            request_key=key,
        )
        session.add(task)
        await start_task_clock(session, task, business)
        await session.flush()
        if task.next_alert_at is not None:
            after_commit(session, SweepAt(task.next_alert_at))
        await events.record(
            session,
            business.id,
            "task.created",
            at=now,
            task_id=task.id,
            lead_id=lead_id,
            assignee_id=assignee.id,
        )
        return task

    _task, new = await made_once(session, earlier, write)
    return new


def _who(contact: Contact) -> str:
    return contact.name or display_phone(contact.phone) or contact.email or "-"


def _quote_text(lead: Lead, day: int) -> Compose:
    def compose() -> tuple[str, str]:
        values = {
            "name": _who(lead.contact),
            "day": day,
            "phone": display_phone(lead.contact.phone) or lead.contact.email or "-",
        }
        return (
            gettext("Follow up on the quote: %(name)s (day %(day)s)") % values,
            gettext(
                "The lead reached the quote stage %(day)s days ago and has not closed. "
                "Call or write: %(phone)s"
            )
            % values,
        )

    return compose


def _class_text(contact: Contact, now: datetime) -> Compose:
    def compose() -> tuple[str, str]:
        last = contact.last_contact_at or contact.created_at
        values = {
            "name": _who(contact),
            "class": contact.abc_class,
            "days": max(0, (now - last).days),
            "phone": display_phone(contact.phone) or contact.email or "-",
        }
        return (
            gettext("Follow up with %(name)s (class %(class)s customer)") % values,
            gettext("Last contact %(days)s days ago. Call or write: %(phone)s") % values,
        )

    return compose


def _birthday_text(contact: Contact, birthday: Birthday) -> Compose:
    def compose() -> tuple[str, str]:
        values = {
            "name": _who(contact),
            "date": format_day(birthday.day),
            "age": birthday.age,
            "phone": display_phone(contact.phone) or contact.email or "-",
        }
        return (
            gettext("Birthday: %(name)s (%(date)s)") % values,
            gettext("%(name)s turns %(age)s on %(date)s. Wish them well: %(phone)s") % values,
        )

    return compose


FOLLOWUP_HORIZON = timedelta(days=14)
FOLLOWUP_ROWS = 50


@dataclass(frozen=True)
class DueFollowup:
    """A row of the task list's customer follow-ups: a classed customer due (or soon)."""

    contact: Contact
    business_name: str
    timezone: str
    due_at: datetime
    every_days: int

    def overdue(self, now: datetime) -> bool:
        return self.due_at <= now


async def due_followups(
    session: AsyncSession, user: User, *, now: datetime, horizon: timedelta = FOLLOWUP_HORIZON
) -> list[DueFollowup]:
    """The A/B/C follow-ups of the user's businesses due by `now + horizon`, the soonest
    first: what the reminder sweep will turn into tasks, and those it has not reached yet
    (read through the partial index on `followup_at`, which is never later than the due time)."""
    rows = await session.execute(
        select(Contact, Business.name, Business.timezone)
        .join(Business, Business.id == Contact.business_id)
        .where(
            Contact.followup_at <= now + horizon,
            Contact.abc_class.is_not(None),
            Contact.erased_at.is_(None),
            may_see(user, Contact.business_id),
        )
        .order_by(Contact.followup_at, Contact.id)
        .limit(FOLLOWUP_ROWS * 4)
    )
    found = list(rows)
    policies = await reminder_policies(session, sorted({c.business_id for c, _n, _z in found}))
    due = []
    for contact, name, zone in found:
        policy = policies[contact.business_id]
        at = contact_due(contact, policy)
        if at is not None and at <= now + horizon and contact.abc_class:
            due.append(DueFollowup(contact, name, zone, at, policy.days_for(contact.abc_class)))
    return sorted(due, key=lambda row: (row.due_at, str(row.contact.id)))[:FOLLOWUP_ROWS]


@dataclass(frozen=True)
class SilentContact:
    """A row of the "we miss you" list."""

    id: uuid.UUID
    business_name: str
    timezone: str
    name: str
    phone: str | None
    email: str | None
    abc_class: str | None
    last_contact_at: datetime

    def days_silent(self, now: datetime) -> int:
        return (now - self.last_contact_at).days


@dataclass(frozen=True)
class SilentList:
    businesses: list[Business]  # the ones the user may pick from
    rows: list[SilentContact]
    business_id: str


async def silent_contacts(
    session: AsyncSession,
    user: User,
    *,
    now: datetime,
    business_id: str = "",
    limit: int = SILENT_LIMIT,
) -> SilentList:
    """Contacts of the user's businesses silent for the business's days (90 unless set), the
    most recently silent first; businesses that switched the list off are left out."""
    businesses = await visible_businesses(session, user)
    chosen = businesses
    if business_id:
        wanted = parse_id(business_id)
        chosen = [b for b in businesses if b.id == wanted]
        if not chosen:
            business_id = ""
            chosen = businesses
    policies = await reminder_policies(session, [b.id for b in chosen])
    cutoffs: dict[int, list[uuid.UUID]] = {}
    for business in chosen:
        policy = policies[business.id]
        if policy.silent_list:
            cutoffs.setdefault(policy.silent_days, []).append(business.id)
    if not cutoffs:
        return SilentList(businesses, [], business_id)
    # One condition per number of days (most businesses share the default): each an index range.
    silent = or_(
        *(
            and_(Contact.business_id.in_(ids), Contact.last_contact_at <= now - timedelta(days=d))
            for d, ids in cutoffs.items()
        )
    )
    statement = (
        select(
            Contact.id,
            Business.name,
            Business.timezone,
            Contact.name,
            Contact.phone,
            Contact.email,
            Contact.abc_class,
            Contact.last_contact_at,
        )
        .join(Business, Business.id == Contact.business_id)
        .where(silent, may_see(user, Contact.business_id))
        .order_by(Contact.last_contact_at.desc(), Contact.id)
        .limit(limit)
    )
    rows = [
        SilentContact(contact_id, business, zone, name, phone, email, abc_class, last)
        for contact_id, business, zone, name, phone, email, abc_class, last in (
            await session.execute(statement)
        )
        if last is not None  # never: the condition compares it
    ]
    return SilentList(businesses, rows, business_id)
