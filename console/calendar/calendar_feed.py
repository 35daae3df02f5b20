"""The business's calendar as a feed: the owner subscribes Google, Apple or Outlook to a signed
URL, and can revoke it (a new link) when it leaked.

The token signs the business id with `calendar_feed_version`, so revoking is one UPDATE and
needs no table. The iCalendar stream is written by hand: CRLF, lines folded at 75 octets, TEXT
escaped, times in UTC; cancelled meetings stay as `STATUS:CANCELLED` so calendars drop them.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import NotFound
from console.calendar.appointments import Booked, with_contacts
from console.calendar.ics import calendar, event, ics_text, who
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
    business = await get_business(session, user, business_id, "calendar")
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


def calendar_ics(business: Business, booked: list[Booked], *, now: datetime) -> str:
    """The business's calendar as an iCalendar stream; cancelled meetings stay as CANCELLED so
    subscribed calendars drop them."""
    events = []
    for appointment, contact in ((b.appointment, b.contact) for b in booked):
        name = who(contact)
        summary = appointment.title or name or "Appointment"
        if appointment.title and name:
            summary = f"{appointment.title} ({name})"
        details = [appointment.notes] if appointment.notes else []
        if contact is not None and contact.phone:
            details.append(contact.phone)
        events.append(event(appointment, summary, now=now, description=chr(10).join(details)))
    headers = [f"X-WR-CALNAME:{ics_text(business.name)}", f"X-WR-TIMEZONE:{business.timezone}"]
    return calendar(events, headers=headers)
