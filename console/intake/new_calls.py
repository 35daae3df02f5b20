"""A call she is taking, typed in on the new-call screen: the lead, hers, with the call log open."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.intake.arrivals import NewLead, create_lead
from console.leads.calls import start_interaction
from models import Interaction, User

# What the call log records for a lead typed in on each channel: a call unless it is a
# message she is answering.
KIND_OF_CHANNEL = {"whatsapp": "whatsapp", "sms": "sms", "email": "email"}


async def open_and_log(
    session: AsyncSession, user: User, new: NewLead, *, now: datetime
) -> Interaction:
    """Open the lead (the caller found or added) and start logging the call on it, so the
    lead page opens with its timer running; the lead is hers from that moment."""
    if not new.business_id:
        raise Invalid("Choose the business that was called.", field="business_id")
    lead = await create_lead(session, user, new, now=now)
    kind = KIND_OF_CHANNEL.get(new.channel, "inbound_call")
    return await start_interaction(session, user, lead.id, kind=kind, now=now)
