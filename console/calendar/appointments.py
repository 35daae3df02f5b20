"""The business's calendar: the secretary (from the lead page) or the owner (from his portal)
books a meeting inside the business's hours, never two at once; the owner moves and cancels
them; the contact is told (booked, moved, cancelled) and reminded the day before, an e-mail
with the meeting as an .ics attached, every notice before the meeting with a signed link on
which the contact may cancel it (`/meeting/<token>`, good until the meeting starts).

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
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import dialect_of, made_once
from console.base.errors import Conflict, ConsoleError, Invalid, NotFound
from console.base.i18n import babel_locale, gettext, speaking_to
from console.calendar import ics
from console.channels.contact_messages import lines_of, queue_to_contact
from console.contacts.contacts import find_or_create_contact
from console.leads.leads import get_lead
from console.people.tenancy import get_business, get_scoped, scoped
from console.sla.sla import clock_for
from console.tasks.task_notices import notify_user
from models import Business, Contact, Notification, OwnerMembership, User
from models.records import Appointment

MIN_MINUTES = 5
MAX_MINUTES = 8 * 60
REMIND_AHEAD = timedelta(days=1)
UPCOMING_LIMIT = 200
WITHDRAWN_NOTE = "withdrawn: the appointment was cancelled"
MOVED_NOTE = "withdrawn: the appointment moved"
LINK_SALT = "mazkira.appointment"


@dataclass(frozen=True)
class AppointmentLinks:
    """Signs the contact's link to a meeting (to cancel it), good until the meeting starts;
    without PUBLIC_URL no link can be sent."""

    secret_key: str
    public_url: str | None

    @classmethod
    def of(cls, settings: Settings) -> AppointmentLinks:
        return cls(settings.secret_key, settings.public_url)

    def token(self, appointment: Appointment) -> str:
        payload = [appointment.id.hex, int(appointment.starts_at.timestamp())]
        return str(URLSafeSerializer(self.secret_key, salt=LINK_SALT).dumps(payload))

    def url(self, appointment: Appointment) -> str | None:
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}/meeting/{self.token(appointment)}"


def read_link(secret_key: str, token: str) -> uuid.UUID:
    """The meeting a contact's link names; a forged or damaged one is a 400."""
    try:
        payload: Any = URLSafeSerializer(secret_key, salt=LINK_SALT).loads(token)
        appointment_hex, _starts = payload
        return uuid.UUID(hex=appointment_hex)
    except (BadSignature, TypeError, ValueError):
        raise ConsoleError("This link is not valid.") from None


def appointment_when(moment: datetime, timezone: str) -> str:
    """The meeting's day and time as a person writes them, no seconds: "8 בדצמבר 2026, 10:00",
    "December 8, 2026, 10:00" (the Hebrew sentence puts ל־ or ב־ before it)."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{format_date(local.date(), 'long', locale=babel_locale())}, {local:%H:%M}"


def reminder_key(appointment: Appointment) -> str:
    """Each time of a meeting has its own reminder (a move brings a new one)."""
    suffix = f":{appointment.sequence}" if appointment.sequence else ""
    return f"appointment:{appointment.id}:reminder{suffix}"


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
    links: AppointmentLinks | None = None,
) -> Appointment:
    """Book a meeting for a lead at the meeting stage, inside the business's hours, in a free
    slot; the contact's confirmation is queued with it."""
    lead = await get_lead(session, user, lead_id)
    if lead.stage != "meeting":
        raise Invalid("Move the lead to the meeting stage to book an appointment.", field="stage")
    return await _book(
        session,
        user,
        lead.business,
        lead.contact,
        booking,
        lead_id=lead.id,
        now=now,
        whatsapp_template=whatsapp_template,
        links=links,
    )


async def book_for_contact(
    session: AsyncSession,
    user: User,
    business_id: str,
    who: Mapping[str, str],
    booking: Booking,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
    links: AppointmentLinks | None = None,
) -> Appointment:
    """The owner books from his portal: the contact by phone or e-mail (found in the business's
    book or added to it, with the name typed), then as the secretary's booking."""
    if not business_id.strip():
        raise Invalid("Choose the business.", field="business_id")
    business = await get_business(session, user, business_id)
    parse_slot(booking, business.timezone)  # the slot's own fields first, before any write
    contact, _new = await find_or_create_contact(
        session,
        business,
        phone=who.get("phone", ""),
        email=who.get("email", ""),
        name=who.get("name", "").strip()[:200],
    )
    return await _book(
        session,
        user,
        business,
        contact,
        booking,
        lead_id=None,
        now=now,
        whatsapp_template=whatsapp_template,
        links=links,
    )


async def _checked_slot(
    session: AsyncSession,
    business: Business,
    booking: Booking,
    *,
    now: datetime,
    other_than: uuid.UUID | None = None,
) -> tuple[datetime, datetime]:
    """The slot in UTC if it is ahead, inside the hours and free (the calendar locked first)."""
    starts_at, ends_at = parse_slot(booking, business.timezone)
    if starts_at <= now:
        raise Invalid("Pick a time that has not passed.", field="day")
    wanted = (ends_at - starts_at) / timedelta(minutes=1)
    if clock_for(business).covered_minutes_between(starts_at, ends_at) < wanted:
        raise Invalid("The business is not open for all of that time.", field="start")
    await _lock_calendar(session, business.id)
    clash = select(Appointment.id).where(
        Appointment.business_id == business.id,
        Appointment.cancelled_at.is_(None),
        Appointment.starts_at < ends_at,
        Appointment.ends_at > starts_at,
    )
    if other_than is not None:
        clash = clash.where(Appointment.id != other_than)
    if await session.scalar(clash) is not None:
        raise Conflict("That time is already taken by another appointment.", field="start")
    return starts_at, ends_at


async def _book(
    session: AsyncSession,
    user: User,
    business: Business,
    contact: Contact,
    booking: Booking,
    *,
    lead_id: uuid.UUID | None,
    now: datetime,
    whatsapp_template: str | None,
    links: AppointmentLinks | None,
) -> Appointment:
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
        starts_at, ends_at = await _checked_slot(session, business, booking, now=now)
        appointment = Appointment(
            business_id=business.id,
            lead_id=lead_id,
            contact_id=contact.id,
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
            contact,
            "confirm",
            whatsapp_template=whatsapp_template,
            now=now,
            links=links,
        )
        return appointment

    if key is not None:
        await _lock_calendar(session, business.id)  # the twin waits, then finds the first
    appointment, _new = await made_once(session, earlier, write)
    return appointment


async def move_appointment(
    session: AsyncSession,
    user: User,
    appointment_id: str | uuid.UUID,
    booking: Booking,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
    links: AppointmentLinks | None = None,
) -> Appointment:
    """Move a coming meeting to another free slot inside the hours: what was still queued
    about its old time is withdrawn, and the contact is told the new one (a new SEQUENCE, so
    a calendar holding the old .ics replaces it). The same time again changes nothing."""
    appointment = await get_scoped(session, user, Appointment, appointment_id)
    if appointment.cancelled_at is not None:
        raise Conflict("This appointment is cancelled.", field="start")
    if appointment.starts_at <= now:
        raise Conflict("This appointment has already begun.", field="start")
    business = await session.get_one(Business, appointment.business_id)
    starts_at, ends_at = await _checked_slot(
        session, business, booking, now=now, other_than=appointment.id
    )
    if (starts_at, ends_at) == (appointment.starts_at, appointment.ends_at):
        return appointment
    appointment.starts_at, appointment.ends_at = starts_at, ends_at
    appointment.sequence = (appointment.sequence or 0) + 1
    await session.flush()
    await _withdraw_queued(session, appointment, MOVED_NOTE)
    contact = await session.get_one(Contact, appointment.contact_id)
    await tell_contact(
        session,
        appointment,
        business,
        contact,
        "moved",
        whatsapp_template=whatsapp_template,
        now=now,
        links=links,
    )
    return appointment


async def _withdraw_queued(session: AsyncSession, appointment: Appointment, note: str) -> None:
    """What is still queued about the meeting (its confirmation, a move's notice, a reminder)
    is never sent after this."""
    await session.execute(
        update(Notification)
        .where(
            Notification.idempotency_key.startswith(f"appointment:{appointment.id}:"),
            Notification.status == "queued",
        )
        .values(status="withdrawn", last_error=note)
        .execution_options(synchronize_session=False)
    )


async def _lock_calendar(session: AsyncSession, business_id: uuid.UUID) -> None:
    """Hold the business's calendar until commit (SQLite: the writer's lock already does)."""
    if dialect_of(session) == "postgresql":
        await session.execute(
            select(Business.id).where(Business.id == business_id).with_for_update()
        )


async def cancel_appointment(
    session: AsyncSession,
    user: User | None,
    appointment_id: str | uuid.UUID,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
) -> Appointment:
    """Cancel once: what is still queued about the meeting is withdrawn (never sent after
    this), and a contact whose meeting was still ahead is told. `user` None: the contact,
    from the signed link (the caller has read it)."""
    if user is None:
        appointment = await session.get_one(Appointment, appointment_id)
    else:
        appointment = await get_scoped(session, user, Appointment, appointment_id)
    if appointment.cancelled_at is not None:
        return appointment
    appointment.cancelled_at = now
    appointment.sequence = (appointment.sequence or 0) + 1
    await session.flush()  # the row's lock: a reminder run that holds it commits first
    await _withdraw_queued(session, appointment, WITHDRAWN_NOTE)
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


async def linked_appointment(
    session: AsyncSession, secret_key: str, token: str
) -> tuple[Appointment, Business]:
    """The meeting and business a contact's link names (400 when forged, 404 when gone)."""
    appointment_id = read_link(secret_key, token)
    appointment = await session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound("Not found.")
    return appointment, await session.get_one(Business, appointment.business_id)


async def cancel_by_link(
    session: AsyncSession,
    secret_key: str,
    token: str,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
) -> Appointment:
    """The contact cancels from his link: once, and only before the meeting starts (409)."""
    appointment, business = await linked_appointment(session, secret_key, token)
    if appointment.cancelled_at is None and appointment.starts_at <= now:
        raise Conflict("This appointment has already begun.")
    if appointment.cancelled_at is not None:
        return appointment
    await cancel_appointment(
        session, None, appointment.id, now=now, whatsapp_template=whatsapp_template
    )
    await _tell_owners(session, appointment, business, now=now)
    return appointment


async def _tell_owners(
    session: AsyncSession, appointment: Appointment, business: Business, *, now: datetime
) -> None:
    """The business's active owners learn that the contact cancelled, on their own channel."""
    contact = await session.get_one(Contact, appointment.contact_id)
    owners = await session.scalars(
        select(User)
        .join(OwnerMembership, OwnerMembership.user_id == User.id)
        .where(OwnerMembership.business_id == business.id, User.active.is_(True))
    )
    for owner in owners:
        with speaking_to(owner):
            values = {
                "contact": contact.name or contact.phone or contact.email or "",
                "when": appointment_when(appointment.starts_at, business.timezone),
                "business": business.name,
            }
            subject = gettext("%(contact)s cancelled the appointment of %(when)s") % values
            body = (
                gettext(
                    "%(contact)s cancelled the appointment of %(when)s with %(business)s, from the"
                    " link in the confirmation."
                )
                % values
            )
        await notify_user(
            session,
            owner,
            key=f"appointment:{appointment.id}:cancelled-by-contact:{owner.id}",
            business_id=business.id,
            subject=subject,
            body=body,
            now=now,
        )


# Built once: every lead page reads them.
APPOINTMENTS_OF_LEAD = (
    select(Appointment)
    .where(Appointment.lead_id == bindparam("lead_id"))
    .order_by(Appointment.starts_at)
)


async def appointments_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[Appointment]:
    return list((await session.scalars(APPOINTMENTS_OF_LEAD, {"lead_id": lead_id})).all())


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
    links: AppointmentLinks | None = None,
) -> bool:
    """Queue the confirmation, a move's notice, the reminder or the cancellation once (its key);
    say if it was new. It goes as the secretary's replies go
    (console/channels/contact_messages.py); by e-mail with the meeting as an .ics attached."""
    link = links.url(appointment) if links is not None and kind != "cancelled" else None

    def compose() -> tuple[str, str]:
        values = {
            "business": business.name,
            "when": appointment_when(appointment.starts_at, business.timezone),
        }
        if kind == "confirm":
            subject = gettext("Your appointment with %(business)s") % values
            body = gettext("Your appointment with %(business)s is booked for %(when)s.") % values
        elif kind == "moved":
            subject = gettext("Moved: your appointment with %(business)s") % values
            body = gettext("Your appointment with %(business)s has moved to %(when)s.") % values
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
        if link:
            body += "\n" + gettext("To cancel: %(link)s") % {"link": link}
        return subject, body

    def attachment() -> dict[str, str]:
        summary = gettext("Appointment with %(business)s") % {"business": business.name}
        text = ics.calendar([ics.event(appointment, summary, now=now, description=link or "")])
        name = "cancelled.ics" if kind == "cancelled" else "appointment.ics"
        return {"filename": name, "content_type": "text/calendar; method=PUBLISH", "text": text}

    key = {
        "confirm": f"appointment:{appointment.id}:confirm",
        "moved": f"appointment:{appointment.id}:moved:{appointment.sequence}",
        "reminder": reminder_key(appointment),
    }.get(kind, f"appointment:{appointment.id}:cancelled")
    return await queue_to_contact(
        session,
        business,
        contact,
        key=key,
        compose=compose,
        whatsapp_template=whatsapp_template,
        now=now,
        lines=lines,
        attachment=attachment,
    )


async def queue_reminders(
    session: AsyncSession,
    *,
    now: datetime,
    whatsapp_template: str | None = None,
    links: AppointmentLinks | None = None,
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
    keys = [reminder_key(row[0]) for row in due]
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
        if reminder_key(appointment) in sent:
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
            links=links,
        ):
            queued += 1
    return queued
