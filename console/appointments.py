"""The business's calendar: the secretary books a meeting inside the business's hours, never two
at once; the contact is told and reminded the day before; the owner subscribes to a signed feed.

Two bookings of one business are serialised before the overlap check: PostgreSQL locks the
business row (`SELECT … FOR UPDATE`), SQLite's writers already queue on `BEGIN IMMEDIATE`. The
form's one-time key makes a double click book once (`made_once`, after the lock, so the twin
finds the first booking instead of colliding with it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.db import dialect_of, made_once
from console.errors import Conflict, Invalid, NotFound
from console.i18n import format_local, gettext, using_locale
from console.leads import get_lead
from console.notify import queue_notification
from console.sla import clock_for
from console.surveys import channel_for
from console.tenancy import get_scoped, scoped
from models import Business, Contact, User
from models.records import Appointment

FEED = "mazkira.calendar-feed"
MIN_MINUTES = 5
MAX_MINUTES = 8 * 60
REMIND_AHEAD = timedelta(days=1)
# The feed carries what is coming and the last month (calendars keep what they were shown).
FEED_PAST = timedelta(days=30)
UPCOMING_LIMIT = 200


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
        await tell_contact(session, appointment, business, lead.contact, "confirm", now=now)
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
    session: AsyncSession, user: User, appointment_id: str | uuid.UUID, *, now: datetime
) -> Appointment:
    appointment = await get_scoped(session, user, Appointment, appointment_id)
    if appointment.cancelled_at is None:
        appointment.cancelled_at = now
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
    return await _with_contacts(session, list((await session.scalars(statement)).all()))


async def _with_contacts(session: AsyncSession, found: list[Appointment]) -> list[Booked]:
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
    now: datetime,
) -> bool:
    """Queue the confirmation ("confirm") or the reminder ("reminder") once; say if it was new."""
    route = channel_for(contact)
    if route is None:
        return False
    channel, recipient = route
    with using_locale(business.locale):
        values = {
            "business": business.name,
            "when": format_local(appointment.starts_at, business.timezone, "medium"),
        }
        if kind == "confirm":
            subject = gettext("Your appointment with %(business)s") % values
            body = gettext("Your appointment with %(business)s is booked for %(when)s.") % values
        else:
            subject = gettext("Reminder: your appointment with %(business)s") % values
            body = (
                gettext("A reminder: your appointment with %(business)s is on %(when)s.") % values
            )
        if appointment.location:
            body += "\n" + gettext("Where: %(location)s") % {"location": appointment.location}
    return await queue_notification(
        session,
        key=f"appointment:{appointment.id}:{kind}",
        business_id=business.id,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        now=now,
    )


async def queue_reminders(session: AsyncSession, *, now: datetime) -> int:
    """Queue the reminder of every appointment starting within a day; each is queued once
    (its idempotency key), so running this twice, or on two workers, changes nothing."""
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
    )
    queued = 0
    for appointment, business, contact in (await session.execute(statement)).all():
        if await tell_contact(session, appointment, business, contact, "reminder", now=now):
            queued += 1
    return queued


# --- the calendar feed ------------------------------------------------------------------------


def feed_token(secret_key: str, business: Business) -> str:
    """The token of the business's feed; bumping `calendar_feed_version` revokes every old one."""
    payload = [business.id.hex, business.calendar_feed_version]
    return str(URLSafeSerializer(secret_key, salt=FEED).dumps(payload))


def feed_url(secret_key: str, business: Business, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/calendar/{feed_token(secret_key, business)}.ics"


async def feed_business(session: AsyncSession, secret_key: str, token: str) -> Business:
    """The business a feed token names, if it is still its current version; else NotFound."""
    try:
        payload: Any = URLSafeSerializer(secret_key, salt=FEED).loads(token)
        business_hex, version = payload
        business_id = uuid.UUID(hex=business_hex)
    except (BadSignature, TypeError, ValueError):
        raise NotFound("Not found.") from None
    business = await session.get(Business, business_id)
    if business is None or not business.active or business.calendar_feed_version != version:
        raise NotFound("Not found.")
    return business


async def feed_appointments(
    session: AsyncSession, business: Business, *, now: datetime
) -> list[Booked]:
    statement = (
        select(Appointment)
        .where(Appointment.business_id == business.id, Appointment.ends_at > now - FEED_PAST)
        .order_by(Appointment.starts_at)
    )
    return await _with_contacts(session, list((await session.scalars(statement)).all()))


def ics_text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 §3.3.11 asks."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space (§3.1)."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = b""
    limit = 75
    for char in line:
        piece = char.encode()
        if len(current) + len(piece) > limit:
            parts.append(current.decode())
            current = b""
            limit = 74  # the leading space counts
        current += piece
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_ics(business: Business, booked: list[Booked], *, now: datetime) -> str:
    """The business's calendar as an iCalendar stream; cancelled meetings stay as CANCELLED so
    subscribed calendars drop them."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Mazkira//Appointments//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_text(business.name)}",
        f"X-WR-TIMEZONE:{business.timezone}",
    ]
    for appointment, contact in ((b.appointment, b.contact) for b in booked):
        who = (contact.name or contact.phone or contact.email or "") if contact else ""
        summary = appointment.title or who or "Appointment"
        if appointment.title and who:
            summary = f"{appointment.title} ({who})"
        lines += [
            "BEGIN:VEVENT",
            f"UID:{appointment.id}@mazkira",
            f"DTSTAMP:{_stamp(appointment.cancelled_at or appointment.created_at or now)}",
            f"DTSTART:{_stamp(appointment.starts_at)}",
            f"DTEND:{_stamp(appointment.ends_at)}",
            f"SUMMARY:{ics_text(summary)}",
        ]
        if appointment.location:
            lines.append(f"LOCATION:{ics_text(appointment.location)}")
        details = [appointment.notes] if appointment.notes else []
        if contact is not None and contact.phone:
            details.append(contact.phone)
        if details:
            lines.append(f"DESCRIPTION:{ics_text(chr(10).join(details))}")
        status = "CANCELLED" if appointment.cancelled_at else "CONFIRMED"
        lines += [f"STATUS:{status}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
