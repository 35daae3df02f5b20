"""The customer card with its whole history, and the caller lookup of a new call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid, NotFound
from console.business.reminder_policy import Birthday, birthday_due, contact_due, reminder_policy
from console.contacts.contacts import find_contact, get_contact, normalise_phone
from console.leads.surveys import surveys_of_contact
from console.people.tenancy import get_business
from console.screens.lead_page import leads_and_interactions
from models import Business, Contact, Interaction, Lead, User
from models.records import Survey


@dataclass(frozen=True)
class CardReminders:
    """What the card says comes next: the A/B/C follow-up (the business's cadence for the
    class) and the birthday reminder, each None when there is none."""

    followup_at: datetime | None
    every_days: int | None
    birthday: Birthday | None
    due: bool = False  # the follow-up's time has come


@dataclass(frozen=True)
class ContactView:
    contact: Contact
    business: Business
    leads: list[Lead]
    interactions: dict[uuid.UUID, list[Interaction]] = field(default_factory=dict)
    surveys: list[Survey] = field(default_factory=list)  # the answered ones, newest first
    reminders: CardReminders | None = None


@dataclass(frozen=True)
class CallerLookup:
    phone: str
    error: str = ""
    view: ContactView | None = None


async def contact_view(
    session: AsyncSession, user: User, contact_id: str | uuid.UUID, *, now: datetime
) -> ContactView:
    """The card: the contact, its history, and its next follow-up and birthday reminder."""
    contact = await get_contact(session, user, contact_id)
    view = await _history(session, contact)
    policy = await reminder_policy(session, contact.business_id)
    due = contact_due(contact, policy)
    reminders = CardReminders(
        due,
        policy.days_for(contact.abc_class) if due and contact.abc_class else None,
        birthday_due(contact, policy, view.business.timezone, now),
        due is not None and due <= now,
    )
    return replace(view, reminders=reminders)


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
