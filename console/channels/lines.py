"""A business's lines: the numbers and addresses the agency's provider accounts receive for it.

Every inbound webhook names the line it arrived on (Twilio's `To`, Meta's `phone_number_id`,
Mailgun's `recipient`); the line names the business. A line belongs to one business only.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import made_once
from console.base.errors import Invalid, NotFound
from console.contacts.contacts import normalise_email, normalise_phone
from console.people.accounts import rotate_intake_key
from console.people.audit import Actor, record_change
from models import Business, Line
from models.channels import LINE_CHANNELS

MAX_LABEL = 100
# How Twilio writes a WhatsApp address, and how a WhatsApp line on Twilio is stored.
TWILIO_WHATSAPP = "whatsapp:"


def on_twilio(whatsapp_line: str) -> bool:
    """A WhatsApp line whose messages go through Twilio (not Meta's Cloud API)."""
    return whatsapp_line.startswith(TWILIO_WHATSAPP)


def line_address(channel: str, raw: str) -> str:
    """The address as lines store it: E.164 for calls and SMS; for WhatsApp the digits of
    Meta's `phone_number_id`, or `whatsapp:` and the E.164 number of a WhatsApp sender on
    Twilio (written with or without the prefix); a lower-cased e-mail address."""
    if channel not in LINE_CHANNELS:
        raise Invalid("Unknown channel.", field="channel")
    text = raw.strip()
    if channel in ("phone", "sms"):
        return normalise_phone(text.removeprefix("tel:"))
    if channel == "whatsapp":
        if text.startswith((TWILIO_WHATSAPP, "+")):
            return TWILIO_WHATSAPP + normalise_phone(text.removeprefix(TWILIO_WHATSAPP))
        if not text.isascii() or not text.isdigit() or not 5 <= len(text) <= 30:
            raise Invalid(
                "A WhatsApp line is the phone_number_id Meta shows for the number (digits), "
                "or a WhatsApp number on Twilio, as whatsapp:+97235551234.",
                field="address",
            )
        return text
    try:
        email = normalise_email(text)
    except Invalid:  # the contact book names its own field; here it is the line's address
        email = None
    if email is None:
        raise Invalid("That is not an e-mail address.", field="address")
    return email


async def add_line(
    session: AsyncSession,
    business: Business,
    channel: str,
    address: str,
    label: str = "",
    *,
    actor: Actor | None = None,
) -> Line:
    """The line, added to this business; adding it again is a no-op, to another one a conflict.
    With an `actor` (the agency's page, the command line), a new line is audited."""
    address = line_address(channel, address)
    if len(label) > MAX_LABEL:
        raise Invalid("This text is too long.", field="label")

    async def earlier() -> Line | None:
        return await session.scalar(
            select(Line).where(Line.channel == channel, Line.address == address)
        )

    async def write() -> Line:
        line = Line(business_id=business.id, channel=channel, address=address, label=label.strip())
        session.add(line)
        await session.flush()
        return line

    line, created = await made_once(session, earlier, write)
    if line.business_id != business.id:
        raise Invalid("This line already belongs to another business.", field="address")
    if created and actor is not None:
        await record_change(session, actor, "line.added", business, channel=channel, line=address)
    return line


async def rotate_key(session: AsyncSession, actor: Actor, business: Business) -> str:
    """A new intake key for the business's web form (the old one stops working); audited."""
    key = await rotate_intake_key(session, business)
    await record_change(session, actor, "intake_key.rotated", business)
    return key


async def remove_line(
    session: AsyncSession, business: Business, line_id: str, *, actor: Actor | None = None
) -> None:
    try:
        wanted = uuid.UUID(line_id)
    except ValueError:
        raise NotFound("No such line.") from None
    result = await session.execute(
        delete(Line).where(Line.id == wanted, Line.business_id == business.id)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise NotFound("No such line.")
    if actor is not None:
        await record_change(session, actor, "line.removed", business, line=str(wanted))


async def lines_of(session: AsyncSession, business_id: uuid.UUID) -> list[Line]:
    statement = select(Line).where(Line.business_id == business_id)
    return list(await session.scalars(statement.order_by(Line.channel, Line.address)))


async def business_on_line(session: AsyncSession, channel: str, raw_address: str) -> Business:
    """The active business this line belongs to; 404 for an unknown line or address."""
    try:
        address = line_address(channel, raw_address)
    except Invalid:
        raise NotFound("No line has this address.") from None
    business = await session.scalar(
        select(Business)
        .join(Line, Line.business_id == Business.id)
        .where(Line.channel == channel, Line.address == address, Business.active.is_(True))
    )
    if business is None:
        raise NotFound("No line has this address.")
    return business
