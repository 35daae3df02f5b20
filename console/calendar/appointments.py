"""The business's calendar: the secretary books a meeting inside the business's hours, never two
at once; the contact is told (booked, cancelled) and reminded the day before.

Two bookings of one business are serialised before the overlap check: PostgreSQL locks the
business row (`SELECT … FOR UPDATE`), SQLite's writers already queue on `BEGIN IMMEDIATE`. The
form's one-time key makes a double click book once (`made_once`, after the lock, so the twin
finds the first booking instead of colliding with it). Cancelling withdraws what is still
queued for the meeting; the reminder run locks the rows it reminds of (PostgreSQL: `FOR UPDATE
SKIP LOCKED`), so a cancellation and a reminder never cross. The feed is
console/calendar/calendar_feed.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import dialect_of, made_once
from console.base.errors import Conflict, Invalid
from console.base.i18n import format_local, gettext
from console.channels.contact_messages import lines_of, queue_to_contact
from console.leads.leads import get_lead
from console.people.tenancy import get_scoped, scoped
from console.sla.sla import clock_for
from models import Business, Contact, Notification, User
from models.records import Appointment

MIN_MINUTES = 5
MAX_MINUTES = 8 * 60
REMIND_AHEAD = timedelta(days=1)
UPCOMING_LIMIT = 200
# What may still be waiting to go out about a meeting when it is cancelled.
WITHDRAWN = ("confirm", "reminder")
WITHDRAWN_NOTE = "withdrawn: the appointment was cancelled"


@dataclass(frozen=True)
class Booking:
    """The booking form as typed: the business's wall date and time, a length in minutes."""

    day: str
    start: str
    minutes: str
    title: str = ""
    location: str = ""
    notes: str = ""
    request_key: str = ""  # the form's one-time key: a double click books once


@dataclass(frozen=True)
class Booked:
    """An appointment with its contact, as the portal and the feed show it."""

    appointment: Appointment
    contact: Contact | None


def parse_slot(booking: Booking, timezone: str) -> tuple[datetime, datetime]:
    """The slot in UTC; Invalid names the field that is wrong."""
    try:
        day = date.fromisoformat(booking.day.strip())
    except ValueError:
        raise Invalid("Enter the date of the appointment.", field="day") from None
    try:
        start = time.fromisoformat(booking.start.strip())
    except ValueError:
        raise Invalid("Enter the time of the appointment (HH:MM).", field="start") from None
    try:
        minutes = int(booking.minutes.strip())
    except ValueError:
        minutes = 0
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise Invalid(
            "An appointment lasts %(least)s to %(most)s minutes.",
            field="minutes",
            least=MIN_MINUTES,
            most=MAX_MINUTES,
        )
    starts_at = datetime.combine(day, start.replace(tzinfo=None), tzinfo=ZoneInfo(timezone))
    starts_at = starts_at.astimezone(UTC)
    return starts_at, starts_at + timedelta(minutes=minutes)


async def book_appointment(
    session: AsyncSession,
    user: User,
    lead_id: str | uuid.UUID,
    booking: Booking,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
) -> Appointment:
    """Book a meeting for a lead at the meeting stage, inside the business's hours, in a free
    slot; the contact's confirmation is queued with it."""
    lead = await get_lead(session, user, lead_id)
    if lead.stage != "meeting":
        raise Invalid("Move the lead to the meeting stage to book an appointment.", field="stage")
    business = lead.business
    starts_at, ends_at = parse_slot(booking, business.timezone)
    if starts_at <= now:
        raise Invalid("Pick a time that has not passed.", field="day")
    wanted = (ends_at - starts_at) / timedelta(minutes=1)
    if clock_for(business).covered_minutes_between(starts_at, ends_at) < wanted:
        raise Invalid("The business is not open for all of that time.", field="start")
    await _lock_calendar(session, business.id)
    key = booking.request_key.strip()[:64] or None

    async def earlier() -> Appointment | None:
        if key is None:
            return None
        return await session.scalar(
            select(Appointment).where(
                Appointment.business_id == business.id, Appointment.request_key == key
            )
        )

    async def write() -> Appointment:
        clash = await session.scalar(
            select(Appointment.id).where(
                Appointment.business_id == business.id,
                Appointment.cancelled_at.is_(None),
                Appointment.starts_at < ends_at,
                Appointment.ends_at > starts_at,
            )
        )
        if clash is not None:
            raise Conflict("That time is already taken by another appointment.", field="start")
        appointment = Appointment(
            business_id=business.id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            starts_at=starts_at,
            ends_at=ends_at,
            title=booking.title.strip()[:200],
            location=booking.location.strip()[:300],
            notes=booking.notes.strip()[:5000],
            created_by_id=user.id,
            request_key=key,
            created_at=now,
        )
        session.add(appointment)
        await session.flush()
        await tell_contact(
            session,
            appointment,
            business,
            lead.contact,
            "confirm",
            whatsapp_template=whatsapp_template,
            now=now,
        )
        return appointment

    appointment, _new = await made_once(session, earlier, write)
    return appointment


async def _lock_calendar(session: AsyncSession, business_id: uuid.UUID) -> None:
    """Hold the business's calendar until commit (SQLite: the writer's lock already does)."""
    if dialect_of(session) == "postgresql":
        await session.execute(
            select(Business.id).where(Business.id == business_id).with_for_update()
        )


async def cancel_appointment(
    session: AsyncSession,
    user: User,
    appointment_id: str | uuid.UUID,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
) -> Appointment:
    """Cancel once: what is still queued about the meeting is withdrawn (never sent after
    this), and a contact whose meeting was still ahead is told."""
    appointment = await get_scoped(session, user, Appointment, appointment_id)
    if appointment.cancelled_at is not None:
        return appointment
    appointment.cancelled_at = now
    await session.flush()  # the row's lock: a reminder run that holds it commits first
    await session.execute(
        update(Notification)
        .where(
            Notification.idempotency_key.in_(
                [f"appointment:{appointment.id}:{kind}" for kind in WITHDRAWN]
            ),
            Notification.status == "queued",
        )
        .values(status="withdrawn", last_error=WITHDRAWN_NOTE)
        .execution_options(synchronize_session=False)
    )
    if appointment.starts_at > now:
        business = await session.get_one(Business, appointment.business_id)
        contact = await session.get_one(Contact, appointment.contact_id)
        await tell_contact(
            session,
            appointment,
            business,
            contact,
            "cancelled",
            whatsapp_template=whatsapp_template,
            now=now,
        )
    return appointment


async def appointments_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[Appointment]:
    statement = (
        select(Appointment).where(Appointment.lead_id == lead_id).order_by(Appointment.starts_at)
    )
    return list((await session.scalars(statement)).all())


async def upcoming(session: AsyncSession, user: User, *, now: datetime) -> list[Booked]:
    """The coming appointments of the user's businesses, soonest first, with their contacts."""
    statement = scoped(
        select(Appointment)
        .where(Appointment.cancelled_at.is_(None), Appointment.ends_at > now)
        .order_by(Appointment.starts_at)
        .limit(UPCOMING_LIMIT),
        user,
        Appointment.business_id,
    )
    return await with_contacts(session, list((await session.scalars(statement)).all()))


async def with_contacts(session: AsyncSession, found: list[Appointment]) -> list[Booked]:
    """Each appointment with its contact: one more statement."""
    wanted = {appointment.contact_id for appointment in found}
    contacts: dict[uuid.UUID, Contact] = {}
    if wanted:
        rows = await session.scalars(select(Contact).where(Contact.id.in_(wanted)))
        contacts = {contact.id: contact for contact in rows}
    return [Booked(appointment, contacts.get(appointment.contact_id)) for appointment in found]


# --- telling the contact ----------------------------------------------------------------------


async def tell_contact(
    session: AsyncSession,
    appointment: Appointment,
    business: Business,
    contact: Contact,
    kind: str,
    *,
    whatsapp_template: str | None,
    now: datetime,
    lines: Mapping[str, str] | None = None,
) -> bool:
    """Queue the confirmation, the reminder or the cancellation once (its key); say if it was
    new. It goes as the secretary's replies go: console/channels/contact_messages.py."""

    def compose() -> tuple[str, str]:
        values = {
            "business": business.name,
            "when": format_local(appointment.starts_at, business.timezone, "medium"),
        }
        if kind == "confirm":
            subject = gettext("Your appointment with %(business)s") % values
            body = gettext("Your appointment with %(business)s is booked for %(when)s.") % values
        elif kind == "reminder":
            subject = gettext("Reminder: your appointment with %(business)s") % values
            body = (
                gettext("A reminder: your appointment with %(business)s is on %(when)s.") % values
            )
        else:
            subject = gettext("Cancelled: your appointment with %(business)s") % values
            body = gettext("Your appointment with %(business)s on %(when)s is cancelled.") % values
        if appointment.location and kind != "cancelled":
            body += "\n" + gettext("Where: %(location)s") % {"location": appointment.location}
        return subject, body

    return await queue_to_contact(
        session,
        business,
        contact,
        key=f"appointment:{appointment.id}:{kind}",
        compose=compose,
        whatsapp_template=whatsapp_template,
        now=now,
        lines=lines,
    )


async def queue_reminders(
    session: AsyncSession, *, now: datetime, whatsapp_template: str | None = None
) -> int:
    """Queue the reminder of every appointment starting within a day; each is queued once
    (its idempotency key), so running this twice, or on two workers, changes nothing. The
    rows are locked until commit, so a cancellation waits for this run (and then withdraws
    what it queued) or this run skips a meeting being cancelled."""
    statement = (
        select(Appointment, Business, Contact)
        .join(Business, Business.id == Appointment.business_id)
        .join(Contact, Contact.id == Appointment.contact_id)
        .where(
            Appointment.cancelled_at.is_(None),
            Appointment.starts_at > now,
            Appointment.starts_at <= now + REMIND_AHEAD,
            Business.active.is_(True),
        )
        .order_by(Appointment.starts_at)
        .with_for_update(of=Appointment, skip_locked=True)
    )
    due = (await session.execute(statement)).all()
    keys = [f"appointment:{row[0].id}:reminder" for row in due]
    sent = (
        set(
            await session.scalars(
                select(Notification.idempotency_key).where(Notification.idempotency_key.in_(keys))
            )
        )
        if keys
        else set()
    )
    lines = await lines_of(session, {row[1].id for row in due}) if due else {}
    queued = 0
    for appointment, business, contact in due:
        if f"appointment:{appointment.id}:reminder" in sent:
            continue
        if await tell_contact(
            session,
            appointment,
            business,
            contact,
            "reminder",
            whatsapp_template=whatsapp_template,
            now=now,
            lines=lines[business.id],
        ):
            queued += 1
    return queued
