"""Privacy (Israeli Privacy Protection Law, amendment 13): what is held about a contact, its
erasure on request, and the retention period after which closed leads lose their notes (and
their recordings).

An erasure anonymises in place (the rows stay for the business's numbers): the card's personal
fields, the leads' subjects and messages, the interactions' notes, summaries and answers, the
tasks, appointments, survey answers, ratings' comments and comments about its leads, and the
messages sent to or about it; the recordings and voicemail of its leads are deleted. Both the
export and the erasure are audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.base.storage import Store
from console.contacts.contacts import get_contact
from console.people.audit import record_audit
from console.people.tenancy import get_business
from models import (
    Appointment,
    Business,
    Comment,
    Contact,
    Interaction,
    InteractionRating,
    Lead,
    Notification,
    Survey,
    Task,
    User,
)
from models.recordings import Recording

ERASED = "—"
MAX_RETENTION_DAYS = 36_500


def _plain(row: object, columns: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A row as JSON-ready values (every column unless named)."""
    table = row.__table__  # type: ignore[attr-defined]
    names = columns or tuple(column.key for column in table.columns)
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(row, name)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID | Decimal):
            value = str(value)
        out[name] = value
    return out


async def export_contact(
    session: AsyncSession, user: User, contact_id: str, *, now: datetime, address: str = ""
) -> dict[str, Any]:
    """Everything held about a contact of the user's businesses, as one JSON document."""
    contact = await get_contact(session, user, contact_id)
    leads = list(await session.scalars(select(Lead).where(Lead.contact_id == contact.id)))
    lead_ids = [lead.id for lead in leads]
    interactions = list(
        await session.scalars(select(Interaction).where(Interaction.contact_id == contact.id))
    )
    interaction_ids = [i.id for i in interactions]
    document = {
        "exported_at": now.isoformat(),
        "contact": _plain(contact),
        "leads": [_plain(lead) for lead in leads],
        "interactions": [_plain(i) for i in interactions],
        "tasks": [
            _plain(t) for t in await session.scalars(select(Task).where(Task.lead_id.in_(lead_ids)))
        ],
        "appointments": [
            _plain(a)
            for a in await session.scalars(
                select(Appointment).where(Appointment.contact_id == contact.id)
            )
        ],
        "surveys": [
            _plain(s)
            for s in await session.scalars(select(Survey).where(Survey.contact_id == contact.id))
        ],
        "ratings": [
            _plain(r)
            for r in await session.scalars(
                select(InteractionRating).where(
                    InteractionRating.interaction_id.in_(interaction_ids)
                )
            )
        ],
        "comments": [
            _plain(c)
            for c in await session.scalars(select(Comment).where(Comment.lead_id.in_(lead_ids)))
        ],
    }
    await record_audit(
        session,
        action="contact.exported",
        now=now,
        actor=user,
        business_id=contact.business_id,
        subject_type="contact",
        subject_id=contact.id,
        address=address,
    )
    return document


async def erase_contact(
    session: AsyncSession,
    user: User,
    contact_id: str,
    *,
    now: datetime,
    address: str = "",
    confirmed: bool = True,
    store: Store | None = None,
) -> Contact:
    """Anonymise a contact of the user's businesses and what was written about them; the
    recordings and voicemail of their leads are deleted (from `store` too)."""
    contact = await get_contact(session, user, contact_id)
    if not confirmed:
        raise Invalid("Tick the box to confirm the erasure: it cannot be undone.", field="confirm")
    lead_ids = select(Lead.id).where(Lead.contact_id == contact.id)
    interaction_ids = select(Interaction.id).where(Interaction.contact_id == contact.id)
    traces = [t for t in (contact.phone, contact.email, contact.name.strip()) if t and len(t) > 2]
    await session.execute(
        update(Lead)
        .where(Lead.contact_id == contact.id)
        .values(subject="", message="", lost_reason="", source="", external_id=None, phone_check="")
    )
    await session.execute(
        update(Interaction)
        .where(Interaction.contact_id == contact.id)
        .values(notes="", summary="", answers={}, delivery_error="")
    )
    await session.execute(
        update(Task).where(Task.lead_id.in_(lead_ids)).values(title=ERASED, details="")
    )
    await session.execute(
        update(Appointment)
        .where(Appointment.contact_id == contact.id)
        .values(title="", location="", notes="")
    )
    await session.execute(update(Survey).where(Survey.contact_id == contact.id).values(improve=""))
    await session.execute(
        update(InteractionRating)
        .where(InteractionRating.interaction_id.in_(interaction_ids))
        .values(comment="")
    )
    await session.execute(update(Comment).where(Comment.lead_id.in_(lead_ids)).values(body=ERASED))
    await forget_recordings(session, store, lead_ids)
    # Messages to the contact, and the business's messages that name them (notices to owners).
    mentions: list[ColumnElement[bool]] = [Notification.interaction_id.in_(interaction_ids)]
    for trace in traces:
        mentions += [
            Notification.recipient == trace,
            Notification.subject.contains(trace, autoescape=True),
            Notification.body.contains(trace, autoescape=True),
        ]
    await session.execute(
        update(Notification)
        .where(Notification.business_id == contact.business_id, or_(*mentions))
        .values(recipient=ERASED, subject="", body="", buttons=None)
    )
    for name in ("name", "company", "address", "industry", "notes"):
        setattr(contact, name, "")
    contact.phone = contact.email = contact.birthday = contact.preferred_channel = None
    contact.tags = []
    contact.erased_at = now
    contact.followup_at = None
    await record_audit(
        session,
        action="contact.erased",
        now=now,
        actor=user,
        business_id=contact.business_id,
        subject_type="contact",
        subject_id=contact.id,
        address=address,
    )
    await session.flush()
    return contact


async def forget_recordings(
    session: AsyncSession, store: Store | None, lead_ids: Select[Any] | Sequence[uuid.UUID]
) -> int:
    """The recordings and voicemail of these leads, out of the store and their rows deleted
    (before the commit: an erasure must not leave the sound behind should the commit fail)."""
    statement = select(Recording.id, Recording.key).where(Recording.lead_id.in_(lead_ids))
    found = list((await session.execute(statement)).all())
    if not found:
        return 0
    if store is not None:
        for row in found:
            await store.delete(row.key)
    await session.execute(delete(Recording).where(Recording.id.in_([row.id for row in found])))
    return len(found)


async def set_retention(
    session: AsyncSession, user: User, business_id: str, raw_days: str, *, now: datetime
) -> int | None:
    """The admin sets how many days closed leads keep their notes (empty: kept)."""
    business = await get_business(session, user, business_id)
    days = parse_retention(raw_days)
    await apply_retention(session, user, business, days, now=now)
    return days


def parse_retention(raw_days: str) -> int | None:
    """A retention period as typed: whole days, 1 to 36500, or empty for "kept"."""
    raw = raw_days.strip()
    if raw and (not raw.isdigit() or not 1 <= int(raw) <= MAX_RETENTION_DAYS):
        raise Invalid(
            "Enter a number of days between 1 and 36500, or leave it empty.", field="days"
        )
    return int(raw) if raw else None


async def apply_retention(
    session: AsyncSession,
    user: User | None,
    business: Business,
    days: int | None,
    *,
    now: datetime,
    address: str = "",
) -> None:
    """Set the period, audited when it changes (from the settings page or the business's)."""
    if days != business.retention_days:
        await record_audit(
            session,
            action="business.retention",
            now=now,
            actor=user,
            business_id=business.id,
            subject_type="business",
            subject_id=business.id,
            address=address,
            days=days,
        )
    business.retention_days = days


async def anonymise_expired_leads(
    session: AsyncSession, *, now: datetime, store: Store | None = None
) -> int:
    """Closed leads past their business's retention period lose their notes and messages,
    and their recordings and voicemail (deleted, from `store` too) (`anonymised_at` set; a
    lead is done once, so running it again changes nothing)."""
    anonymised = 0
    policies = await session.execute(
        select(Business.id, Business.retention_days).where(Business.retention_days.is_not(None))
    )
    for business_id, days in policies.all():
        cutoff = now - timedelta(days=days or 0)
        expired = select(Lead.id).where(
            Lead.business_id == business_id,
            Lead.closed_at.is_not(None),
            Lead.closed_at < cutoff,
            Lead.anonymised_at.is_(None),
        )
        ids = list((await session.scalars(expired.limit(1000))).all())
        if not ids:
            continue
        await session.execute(
            update(Interaction)
            .where(Interaction.lead_id.in_(ids))
            .values(notes="", summary="", answers={})
        )
        await session.execute(update(Comment).where(Comment.lead_id.in_(ids)).values(body=ERASED))
        await forget_recordings(session, store, ids)
        result = await session.execute(
            update(Lead)
            .where(Lead.id.in_(ids))
            .values(subject="", message="", lost_reason="", anonymised_at=now)
        )
        anonymised += result.rowcount or 0  # type: ignore[attr-defined]
    return anonymised
