"""Messages a business sends its contact outside a conversation (an appointment's confirmation,
reminder or cancellation, a survey link) go the way the secretary's replies go.

The channel is the one the contact prefers (if we have the address), else e-mail, else SMS; it
goes out from the business's own line on that channel when it has one (the agency's sender
otherwise), in the contact's language (the business's when the card names none). WhatsApp
delivers free text only within 24 hours of the contact's last message: outside that window the
approved template is sent in the contact's language, and without one the message goes by SMS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.i18n import using_locale
from console.channels.lines import on_twilio
from console.channels.notify import queue_notification, template_parts
from models import Business, Contact, Interaction, Line

WHATSAPP_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class ContactRoute:
    channel: str
    recipient: str  # the contact's E.164 number or e-mail address
    sender: str  # the business's line, or "" for the agency's own
    template: str = ""  # WhatsApp outside the window: the approved "name:language"


def channel_for(contact: Contact) -> tuple[str, str] | None:
    """The channel and address to reach a contact on: the one they prefer (if we have the
    address), else e-mail, else SMS; None when there is neither."""
    addresses = {
        "email": contact.email,
        "sms": contact.phone,
        "whatsapp": contact.phone,
    }
    preferred = contact.preferred_channel or ""
    address = addresses.get(preferred)
    if address:
        return preferred, address
    if contact.email:
        return "email", contact.email
    if contact.phone:
        return "sms", contact.phone
    return None


def language_of(contact: Contact, business: Business) -> str:
    return contact.locale or business.locale


async def business_lines(session: AsyncSession, business_id: uuid.UUID) -> dict[str, str]:
    """The business's line per channel (the latest added, when it has several)."""
    return (await lines_of(session, [business_id]))[business_id]


# Built once: every lead page reads it.
LINES_OF = (
    select(Line)
    .where(Line.business_id.in_(bindparam("business_ids", expanding=True)))
    .order_by(Line.created_at)
)


async def lines_of(
    session: AsyncSession, business_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """`business_lines` of many businesses in one query (a job that writes to many contacts)."""
    found: dict[uuid.UUID, dict[str, str]] = {business_id: {} for business_id in business_ids}
    lines = await session.scalars(LINES_OF, {"business_ids": list(found)})
    for line in lines:
        found[line.business_id][line.channel] = line.address
    return found


async def whatsapp_window_ends(session: AsyncSession, contact_id: uuid.UUID) -> datetime | None:
    """When free WhatsApp text to the contact stops being delivered (24 hours after their last
    incoming WhatsApp message); None when they never wrote on WhatsApp."""
    last = await session.scalar(
        select(func.max(Interaction.started_at)).where(
            Interaction.contact_id == contact_id,
            Interaction.kind == "whatsapp",
            Interaction.direction == "in",
        )
    )
    return last + WHATSAPP_WINDOW if last is not None else None


async def route_to(
    session: AsyncSession,
    business: Business,
    contact: Contact,
    *,
    whatsapp_template: str | None,
    now: datetime,
    lines: Mapping[str, str] | None = None,
) -> ContactRoute | None:
    """How a message reaches the contact now; None when the card has no address. `lines` are
    the business's (`business_lines`), when the caller has them already."""
    found = channel_for(contact)
    if found is None:
        return None
    channel, recipient = found
    if lines is None:
        lines = await business_lines(session, business.id)
    template = ""
    if channel == "whatsapp":
        ends = await whatsapp_window_ends(session, contact.id)
        if ends is None or now >= ends:
            if whatsapp_template and not on_twilio(lines.get("whatsapp", "")):
                name, _, fill = template_parts(whatsapp_template)  # in the contact's language
                template = ":".join(filter(None, [name, language_of(contact, business), fill]))
            else:  # no template to open the window with (none set, or a number on Twilio,
                channel = "sms"  # whose templates need its Content API): the phone by SMS
    return ContactRoute(channel, recipient, lines.get(channel, ""), template)


async def queue_to_contact(
    session: AsyncSession,
    business: Business,
    contact: Contact,
    *,
    key: str,
    compose: Callable[[], tuple[str, str]],
    whatsapp_template: str | None,
    now: datetime,
    lines: Mapping[str, str] | None = None,
    attachment: Callable[[], dict[str, str]] | None = None,
) -> bool:
    """Queue the message `compose` writes (subject, body; called in the contact's language)
    once under `key`; say whether it was new. `attachment` makes the file an e-mail carries
    (in the contact's language too); other channels go without it."""
    route = await route_to(
        session, business, contact, whatsapp_template=whatsapp_template, now=now, lines=lines
    )
    if route is None:
        return False
    with using_locale(language_of(contact, business)):
        subject, body = compose()
        attached = attachment() if attachment is not None and route.channel == "email" else None
    return await queue_notification(
        session,
        key=key,
        business_id=business.id,
        channel=route.channel,
        recipient=route.recipient,
        subject=subject,
        body=body,
        sender=route.sender,
        template=route.template,
        now=now,
        attachment=attached,
    )
