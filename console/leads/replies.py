"""A secretary answers the contact on a channel: WhatsApp, SMS or e-mail, from the business's line.

The reply is logged at once as an outgoing interaction (it is the lead's first response if none
came before) and queued as a notification, which the sender job delivers through the provider
with retries; the provider's id and its status callbacks then show how far it got. The form's
one-time key makes a double click send once. WhatsApp delivers free text only within 24 hours of
the contact's last message; outside that window only an approved template may be sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import made_once
from console.base.errors import Invalid, NotFound
from console.channels.contact_messages import business_lines, whatsapp_window_ends
from console.channels.lines import on_twilio
from console.channels.notify import queue_notification
from console.contacts.contact_book import touch_contact
from console.leads.calls import stamp_first_response
from console.leads.leads import lead_to_act_on
from console.live import events
from models import Interaction, Lead, Role, User

REPLY_CHANNELS = ("whatsapp", "sms", "email")
MAX_LENGTH = {"whatsapp": 4_096, "sms": 1_600, "email": 20_000}
LINE_OF = {"whatsapp": "whatsapp", "sms": "sms", "email": "email"}


@dataclass(frozen=True)
class ReplyChannel:
    channel: str
    recipient: str  # the contact's E.164 number or e-mail address
    sender: str  # the business's line
    window_open: bool = True  # WhatsApp: free text allowed
    window_ends: datetime | None = None


@dataclass(frozen=True)
class ReplyOptions:
    channels: list[ReplyChannel]
    preferred: (
        str | None
    )  # the lead's own channel if free text can go there, else the first that can
    template: str | None  # the approved WhatsApp template, when one is configured


async def reply_options(
    session: AsyncSession, lead: Lead, *, template: str | None, now: datetime
) -> ReplyOptions:
    """The channels this lead's contact can be answered on, from the business's lines."""
    contact = lead.contact
    lines = await business_lines(session, lead.business_id)
    # the contact's last WhatsApp message is looked up only when WhatsApp could answer him
    on_whatsapp = bool(contact.phone) and LINE_OF["whatsapp"] in lines
    window_ends = await whatsapp_window_ends(session, contact.id) if on_whatsapp else None
    found = []
    for channel in REPLY_CHANNELS:
        recipient = contact.email if channel == "email" else contact.phone
        if not recipient or LINE_OF[channel] not in lines:
            continue
        if channel == "whatsapp":
            open_now = window_ends is not None and now < window_ends
            found.append(ReplyChannel(channel, recipient, lines["whatsapp"], open_now, window_ends))
        else:
            found.append(ReplyChannel(channel, recipient, lines[LINE_OF[channel]]))
    usable = [c.channel for c in found if c.window_open]  # free text goes out at once
    preferred = lead.channel if lead.channel in usable else (usable[0] if usable else None)
    if on_twilio(lines.get("whatsapp", "")):  # its templates need Twilio's Content API
        template = None
    return ReplyOptions(found, preferred, template)


async def send_reply(
    session: AsyncSession,
    user: User,
    lead_id: str | uuid.UUID,
    *,
    channel: str,
    text: str,
    now: datetime,
    template: str | None = None,
    request_key: str = "",
) -> Interaction:
    """Log the reply and queue it for sending, once per form key."""
    if user.role == Role.OWNER:
        raise NotFound("Not found.")
    lead = await lead_to_act_on(session, user, lead_id, now=now)
    options = await reply_options(session, lead, template=template, now=now)
    route = next((c for c in options.channels if c.channel == channel), None)
    if route is None:
        raise Invalid("This lead cannot be answered on that channel.", field="channel")
    use_template = channel == "whatsapp" and not route.window_open
    if use_template and not options.template:  # none set, or none for a number on Twilio
        if on_twilio(route.sender):
            raise Invalid(
                "More than 24 hours passed since the contact's last WhatsApp message: only an "
                "approved template may be sent, and this business's WhatsApp number is on "
                "Twilio, whose templates the console cannot send. Answer by SMS or call.",
                field="channel",
            )
        raise Invalid(
            "More than 24 hours passed since the contact's last WhatsApp message: only an "
            "approved template may be sent, and none is configured.",
            field="channel",
        )
    body = text.strip()
    if not body and not use_template:
        raise Invalid("The message is empty.", field="text")
    if len(body) > MAX_LENGTH[channel]:
        raise Invalid("The message is too long.", field="text")
    key = request_key[:64] or None

    async def earlier() -> Interaction | None:
        if key is None:
            return None
        return await session.scalar(
            select(Interaction).where(
                Interaction.business_id == lead.business_id, Interaction.request_key == key
            )
        )

    async def write() -> Interaction:
        chosen = (options.template or "") if use_template else ""
        shown = f"[{chosen.partition(':')[0]}]" if chosen else body
        return await _log_and_queue(session, user, lead, route, shown, chosen, key, now)

    interaction, _new = await made_once(session, earlier, write)
    return interaction


async def _log_and_queue(
    session: AsyncSession,
    user: User,
    lead: Lead,
    route: ReplyChannel,
    body: str,
    template: str,
    key: str | None,
    now: datetime,
) -> Interaction:
    interaction = Interaction(
        business_id=lead.business_id,
        lead_id=lead.id,
        contact_id=lead.contact_id,
        user_id=user.id,
        kind=route.channel,
        status="done",
        direction="out",
        delivery_status="queued",
        started_at=now,
        ended_at=now,
        updated_at=now,
        summary=body[:500],
        notes=body,
        request_key=key,
    )
    session.add(interaction)
    await session.flush()
    subject = lead.subject or lead.business.name
    await queue_notification(
        session,
        key=f"reply:{interaction.id}",
        business_id=lead.business_id,
        channel=route.channel,
        recipient=route.recipient,
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        body=body,
        sender=route.sender,
        template=template,
        interaction_id=interaction.id,
        now=now,
    )
    await stamp_first_response(session, lead, user, route.channel, now)
    touch_contact(lead.contact, now)
    await events.record(
        session,
        lead.business_id,
        "interaction.logged",
        at=now,
        lead_id=lead.id,
        interaction_id=interaction.id,
    )
    return interaction
