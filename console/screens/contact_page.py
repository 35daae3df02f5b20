"""The customer card with its whole history, and the caller lookup of a new call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid, NotFound
from console.contacts.contacts import find_contact, get_contact, normalise_phone
from console.leads.surveys import surveys_of_contact
from console.people.tenancy import get_business
from console.screens.lead_page import leads_and_interactions
from models import Business, Contact, Interaction, Lead, User
from models.records import Survey


@dataclass(frozen=True)
class ContactView:
    contact: Contact
    business: Business
    leads: list[Lead]
    interactions: dict[uuid.UUID, list[Interaction]] = field(default_factory=dict)
    surveys: list[Survey] = field(default_factory=list)  # the answered ones, newest first


@dataclass(frozen=True)
class CallerLookup:
    phone: str
    error: str = ""
    view: ContactView | None = None


async def contact_view(
    session: AsyncSession, user: User, contact_id: str | uuid.UUID
) -> ContactView:
    contact = await get_contact(session, user, contact_id)
    return await _history(session, contact)


async def _history(session: AsyncSession, contact: Contact) -> ContactView:
    business = await session.get_one(Business, contact.business_id)
    leads, by_lead = await leads_and_interactions(session, contact.id)
    surveys = await surveys_of_contact(session, contact.id)
    return ContactView(contact, business, leads, by_lead, surveys)


async def caller_lookup(
    session: AsyncSession, user: User, business_id: str, phone: str
) -> CallerLookup:
    """Who is calling: the business's contact with this number in any format, or nobody yet."""
    if not business_id or not phone.strip():
        return CallerLookup(phone="")
    try:
        business = await get_business(session, user, business_id)
        e164 = normalise_phone(phone)
    except (Invalid, NotFound) as refusal:
        return CallerLookup(phone=phone, error=refusal.translated())
    contact = await find_contact(session, business.id, phone=e164, email=None)
    if contact is None:
        return CallerLookup(phone=e164)
    return CallerLookup(phone=e164, view=await _history(session, contact))
