"""Messages and calls arriving through the providers, each written exactly once.

Whatever the channel, an arrival finds or creates its contact (by normalised phone or e-mail, so
a caller who also writes on WhatsApp is one person), and is logged as an incoming interaction
keyed by the provider's message id (unique per business). A message joins the contact's open
lead, or opens one; a call always opens one, since each call is a request answered live. The
same delivery twice, or five times at once, finds the first one's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import made_once
from console.contacts.contacts import find_or_create_contact, touch_contact
from console.leads.leads import NewLead, create_lead
from console.live import events
from models import Business, Contact, Interaction, Lead

KIND_OF_CHANNEL = {"phone": "inbound_call", "sms": "sms", "whatsapp": "whatsapp", "email": "email"}
MESSAGE_ID_LENGTH = 200
SUMMARY_LENGTH = 500
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Arrival:
    channel: str  # phone, sms, whatsapp or email
    message_id: str  # the provider's: CallSid, MessageSid, wamid, Message-Id
    phone: str = ""
    email: str = ""
    name: str = ""
    subject: str = ""
    text: str = ""
    source: str = ""


@dataclass(frozen=True)
class Arrived:
    lead: Lead
    interaction: Interaction
    new_lead: bool
    duplicate: bool


async def receive(
    session: AsyncSession, business: Business, arrival: Arrival, *, now: datetime
) -> Arrived:
    """The arrival's lead and interaction, made once per provider message id."""
    message_id = arrival.message_id[:MESSAGE_ID_LENGTH]

    async def earlier() -> tuple[Lead, Interaction, bool] | None:
        interaction = await message(session, business, message_id)
        if interaction is None:
            return None
        lead = await session.get(Lead, interaction.lead_id)
        assert lead is not None
        return lead, interaction, False

    async def write() -> tuple[Lead, Interaction, bool]:
        contact, _created = await find_or_create_contact(
            session, business, phone=arrival.phone, email=arrival.email, name=arrival.name
        )
        touch_contact(contact, now)
        lead = None if arrival.channel == "phone" else await _open_lead(session, contact)
        new_lead = lead is None
        if lead is None:
            lead = await _new_lead(session, business, arrival, message_id, now=now)
        interaction = Interaction(
            business_id=business.id,
            lead_id=lead.id,
            contact_id=contact.id,
            kind=KIND_OF_CHANNEL[arrival.channel],
            status="done",
            direction="in",
            provider_message_id=message_id,
            started_at=now,
            summary=(arrival.subject or arrival.text)[:SUMMARY_LENGTH],
            notes=arrival.text[:MAX_TEXT],
            updated_at=now,
        )
        session.add(interaction)
        await session.flush()
        if not new_lead:
            await events.record(session, business.id, "lead.updated", at=now, lead_id=lead.id)
        return lead, interaction, new_lead

    (lead, interaction, new_lead), made = await made_once(session, earlier, write)
    return Arrived(lead, interaction, new_lead=new_lead and made, duplicate=not made)


async def message(session: AsyncSession, business: Business, message_id: str) -> Interaction | None:
    return await session.scalar(
        select(Interaction).where(
            Interaction.business_id == business.id,
            Interaction.provider_message_id == message_id[:MESSAGE_ID_LENGTH],
        )
    )


async def _open_lead(session: AsyncSession, contact: Contact) -> Lead | None:
    """The contact's latest open lead, which a new message continues."""
    return await session.scalar(
        select(Lead)
        .where(Lead.contact_id == contact.id, Lead.closed_at.is_(None))
        .order_by(Lead.created_at.desc())
        .limit(1)
    )


async def _new_lead(
    session: AsyncSession, business: Business, arrival: Arrival, message_id: str, *, now: datetime
) -> Lead:
    text = arrival.text[:MAX_TEXT]
    new = NewLead(
        business_id=str(business.id),
        phone=arrival.phone,
        email=arrival.email,
        name=arrival.name,
        channel=arrival.channel,
        subject=(arrival.subject or text)[:120],
        message=text,
        source=arrival.source,
    )
    return await create_lead(session, None, new, now=now, business=business, external_id=message_id)
