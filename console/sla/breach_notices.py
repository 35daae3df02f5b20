"""Telling owners of a missed promise: on each owner's channel, in his language, once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.errors import Invalid
from console.base.i18n import gettext, speaking_to
from console.channels.notify import queue_notification, queue_push
from console.people.availability import away_now
from models import Business, Lead, OwnerMembership, User


async def tell_owners(
    session: AsyncSession,
    breaches: list[dict[str, Any]],
    businesses: dict[uuid.UUID, Business],
    *,
    now: datetime,
) -> None:
    """Tell each owner who asked for it (in the policy) of a lead missed, on his channel and in
    his language; once per alert and owner, however often the sweep runs. An owner who is away
    (console/people/availability.py) is not told: the breach is the agency's to fix, and its admins
    see it on the alerts panel."""
    business_ids = {b["business_id"] for b in breaches}
    owners: dict[uuid.UUID, list[User]] = {}
    rows = await session.execute(
        select(OwnerMembership.business_id, User)
        .join(User, User.id == OwnerMembership.user_id)
        .where(OwnerMembership.business_id.in_(business_ids), User.active.is_(True))
    )
    for business_id, owner in rows:
        if away_now(owner, now) is None:
            owners.setdefault(business_id, []).append(owner)
    leads = {
        lead.id: lead
        for lead in await session.scalars(
            select(Lead)
            .where(Lead.id.in_([b["lead_id"] for b in breaches]))
            .options(joinedload(Lead.contact))
        )
    }
    for breach in breaches:
        lead, business = leads[breach["lead_id"]], businesses[breach["business_id"]]
        for owner in owners.get(business.id, []):
            with speaking_to(owner):
                subject = gettext("A lead waited too long: %(name)s") % {
                    "name": lead.contact.name or lead.contact.phone or lead.contact.email or ""
                }
                hello = gettext("Hello %(name)s,") % {"name": owner.name}  # by name, in the form
                body = gettext(
                    "%(business)s: a lead from %(name)s (%(phone)s) has had no first response "
                    "within the promised %(minutes)s minutes. The agency has been alerted."
                ) % {
                    "business": business.name,
                    "name": lead.contact.name or "-",
                    "phone": lead.contact.phone or lead.contact.email or "-",
                    "minutes": lead.sla_minutes,
                }
            await _notify_owner(session, owner, breach, subject, f"{hello}\n{body}", now)


async def _notify_owner(
    session: AsyncSession,
    owner: User,
    breach: dict[str, Any],
    subject: str,
    body: str,
    now: datetime,
) -> None:
    """On the owner's chosen channel; by e-mail when that channel has no address for him; and
    to his browsers when he wants breaches by push."""
    await queue_push(
        session,
        owner,
        kind="breach",
        key=f"alert:{breach['id']}:user:{owner.id}",
        business_id=breach["business_id"],
        title=subject,
        body=body,
        path=f"/portal/leads/{breach['lead_id']}",
        now=now,
    )
    channel = owner.notify_channel if owner.phone else "email"
    recipient = owner.phone if channel != "email" and owner.phone else owner.email
    try:
        await queue_notification(
            session,
            key=f"alert:{breach['id']}:user:{owner.id}",
            business_id=breach["business_id"],
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            user_id=owner.id,
            alert_id=breach["id"],
            now=now,
        )
    except Invalid:
        if channel == "email":
            raise
        await queue_notification(
            session,
            key=f"alert:{breach['id']}:user:{owner.id}",
            business_id=breach["business_id"],
            channel="email",
            recipient=owner.email,
            subject=subject,
            body=body,
            user_id=owner.id,
            alert_id=breach["id"],
            now=now,
        )
