"""The business's calendar as a feed: the owner subscribes Google, Apple or Outlook to a signed
URL, and can revoke it (a new link) when it leaked.

The token signs the business id with `calendar_feed_version`, so revoking is one UPDATE and
needs no table. The iCalendar stream is written by hand: CRLF, lines folded at 75 octets, TEXT
escaped, times in UTC; cancelled meetings stay as `STATUS:CANCELLED` so calendars drop them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.characters import without_bidi_controls
from console.base.errors import NotFound
from console.calendar.appointments import Booked, with_contacts
from console.people.audit import record_audit
from console.people.tenancy import get_business
from models import Business, User
from models.records import Appointment

FEED = "mazkira.calendar-feed"
# The feed carries what is coming and the last month (calendars keep what they were shown).
FEED_PAST = timedelta(days=30)


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


async def revoke_feed(
    session: AsyncSession,
    user: User,
    business_id: str | uuid.UUID,
    *,
    now: datetime,
    address: str = "",
) -> Business:
    """Void every link to the business's feed (a new one replaces it); audited."""
    business = await get_business(session, user, business_id)
    await session.execute(
        update(Business)
        .where(Business.id == business.id)
        .values(calendar_feed_version=Business.calendar_feed_version + 1)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(business, ["calendar_feed_version"])
    await record_audit(
        session,
        action="calendar_feed.revoked",
        now=now,
        actor=user,
        business_id=business.id,
        subject_type="business",
        subject_id=business.id,
        address=address,
        version=business.calendar_feed_version,
    )
    return business


async def feed_appointments(
    session: AsyncSession, business: Business, *, now: datetime
) -> list[Booked]:
    statement = (
        select(Appointment)
        .where(Appointment.business_id == business.id, Appointment.ends_at > now - FEED_PAST)
        .order_by(Appointment.starts_at)
    )
    return await with_contacts(session, list((await session.scalars(statement)).all()))


def ics_text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 §3.3.11 asks, without the bidirectional controls (a
    calendar shows it as plain text, where a name could read as another number)."""
    return (
        without_bidi_controls(value)
        .replace("\\", "\\\\")
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
