"""A/B/C classes from a business's won deals, and the contacts gone quiet for two years.

The rule (computed per business, over the contacts that are not erased):
- a contact's revenue is the sum of `deal_value` of their won leads; contacts without won
  revenue are not classed by it (they keep what they have);
- contacts are sorted by revenue, highest first (ties by id, so a run is repeatable);
- a contact is **A** while the revenue of the contacts before it is under 20% of the total,
  **B** while it is under 50% (the next ~30%), and **C** after that.
So the first contact is always A, and A holds the few contacts who bring most of the money.
A contact whose class a person set (`abc_class_locked`) keeps it; its revenue still counts in
everybody else's place in the order.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.business.reminder_policy import contact_due, reminder_policy
from console.people.tenancy import get_business, scoped
from models import Business, Contact, Lead, User

A_SHARE = Decimal("0.20")
B_SHARE = Decimal("0.50")  # A's 20% and B's next 30%
INACTIVE_AFTER = timedelta(days=730)  # two years without contact


def classes_by_revenue(revenue: dict[uuid.UUID, Decimal]) -> dict[uuid.UUID, str]:
    """The class of each contact with revenue, by the rule above."""
    total = sum(revenue.values(), Decimal(0))
    if total <= 0:
        return {}
    ranked = sorted(revenue.items(), key=lambda item: (-item[1], str(item[0])))
    classes: dict[uuid.UUID, str] = {}
    before = Decimal(0)
    for contact_id, amount in ranked:
        if amount <= 0:
            break
        share = before / total
        classes[contact_id] = "A" if share < A_SHARE else "B" if share < B_SHARE else "C"
        before += amount
    return classes


async def classify_business(session: AsyncSession, business_id: uuid.UUID) -> int:
    """Recompute the business's A/B/C classes; returns how many contacts changed class."""
    won = (
        select(Lead.contact_id, func.sum(Lead.deal_value))
        .join(Contact, Contact.id == Lead.contact_id)
        .where(
            Lead.business_id == business_id,
            Lead.stage == "won",
            Lead.deal_value.is_not(None),
            Contact.erased_at.is_(None),
        )
        .group_by(Lead.contact_id)
    )
    revenue = {contact_id: Decimal(total or 0) for contact_id, total in await session.execute(won)}
    classes = classes_by_revenue(revenue)
    if not classes:
        return 0
    contacts = await session.scalars(
        select(Contact).where(
            Contact.id.in_(list(classes)),
            Contact.abc_class_locked.is_(False),
        )
    )
    changed = [c for c in contacts if c.abc_class != classes[c.id]]
    if changed:
        policy = await reminder_policy(session, business_id)
        for contact in changed:
            contact.abc_class = classes[contact.id]
            due = contact_due(contact, policy)
            if contact.birthday is not None and contact.followup_at is not None:
                due = min(filter(None, (due, contact.followup_at)))  # a birthday may come first
            contact.followup_at = due
        await session.flush()
    return len(changed)


async def classify_visible(session: AsyncSession, user: User, business_id: str) -> Business:
    """A/B/C recomputed now, on request, for one of the user's businesses."""
    business = await get_business(session, user, business_id)
    await classify_business(session, business.id)
    return business


def inactive_since(now: datetime) -> datetime:
    return now - INACTIVE_AFTER


def is_inactive(contact: Contact, now: datetime) -> bool:
    """No contact for two years (or, never contacted, on the books that long): shown, kept."""
    last = contact.last_contact_at or contact.created_at
    return last < inactive_since(now)


def inactive_clause(now: datetime) -> ColumnElement[bool]:
    """The WHERE clause of `is_inactive`, for the contacts page's filter."""
    cutoff = inactive_since(now)
    return or_(
        Contact.last_contact_at < cutoff,
        (Contact.last_contact_at.is_(None)) & (Contact.created_at < cutoff),
    )


async def inactive_contacts(
    session: AsyncSession, user: User, *, now: datetime, limit: int = 50
) -> list[Contact]:
    """The user's contacts gone quiet for two years, the longest silent first (never deleted)."""
    statement = scoped(select(Contact), user, Contact.business_id).where(
        inactive_clause(now), Contact.erased_at.is_(None)
    )
    ordered = statement.order_by(Contact.last_contact_at.nulls_first(), Contact.created_at)
    return list((await session.scalars(ordered.limit(limit))).all())
