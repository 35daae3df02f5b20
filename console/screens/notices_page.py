"""What an owner is told, per business: his settings (or, for the admin, the business's
default and each owner's), tomorrow's digest as it stands, and where his messages go. The
admin's page of failed sends."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import NotFound
from console.channels.owner_notices import (
    NoticeForm,
    Notices,
    business_default,
    notices_for,
    save_notices,
)
from console.channels.to_person import Reach, reach_of
from console.people.tenancy import PERMISSIONS, get_business, parse_id
from console.reports.digests import digest_preview, resend_digest
from models import Business, Notification, OwnerMembership, Role, User

FAILED_SHOWN = 200


@dataclass(frozen=True)
class NoticesPage:
    business: Business
    owners: list[User]  # the business's owners (an owner sees only himself)
    person: User | None  # whose settings the form holds; None: the business's default
    typed: NoticeForm
    own: bool  # the person has settings of his own (else the business's apply)
    reach: Reach | None  # where his messages go
    preview_subject: str
    preview_body: str


async def _owners(session: AsyncSession, business_id: uuid.UUID) -> list[User]:
    return list(
        await session.scalars(
            select(User)
            .join(OwnerMembership, OwnerMembership.user_id == User.id)
            .where(OwnerMembership.business_id == business_id, User.role == Role.OWNER)
            .order_by(User.name)
        )
    )


async def _reads_digest(session: AsyncSession, business: Business, person: User) -> bool:
    """Whether the person's role in the business lets him read its numbers (a digest holds
    them): an owner or a manager, not staff."""
    role = await session.scalar(
        select(OwnerMembership.member_role).where(
            OwnerMembership.business_id == business.id, OwnerMembership.user_id == person.id
        )
    )
    return role in PERMISSIONS["kpis"]


async def _whose(
    session: AsyncSession, viewer: User, business: Business, person_id: str
) -> tuple[list[User], User | None]:
    """The owners the viewer may set, and the one asked for: an owner only himself; the admin
    any owner of the business, or none (the default). Anyone else: 404."""
    owners = await _owners(session, business.id)
    if viewer.role == Role.OWNER:
        return [viewer], viewer
    if not person_id:
        return owners, None
    wanted = parse_id(person_id)
    person = next((owner for owner in owners if owner.id == wanted), None)
    if person is None:
        raise NotFound("Not found.")
    return owners, person


async def notices_page(
    session: AsyncSession,
    viewer: User,
    business_id: str,
    *,
    person_id: str = "",
    typed: NoticeForm | None = None,
    now: datetime,
    public_url: str | None = None,
) -> NoticesPage:
    business = await get_business(session, viewer, business_id)
    owners, person = await _whose(session, viewer, business, person_id)
    subject = body = ""
    if person is None:
        notices = await business_default(session, business.id)
    else:
        notices = (await notices_for(session, [(business.id, person.id)]))[(business.id, person.id)]
        if await _reads_digest(session, business, person):
            _digest, subject, body = await digest_preview(
                session, business, person, now=now, public_url=public_url
            )
    return NoticesPage(
        business,
        owners,
        person,
        typed or NoticeForm.of(notices),
        notices.own,
        reach_of(person) if person else None,
        subject,
        body,
    )


async def save_page(
    session: AsyncSession,
    viewer: User,
    business_id: str,
    typed: NoticeForm,
    *,
    person_id: str = "",
    now: datetime,
) -> Notices:
    """Keep what was typed for the person (the admin without one: the business's default)."""
    business = await get_business(session, viewer, business_id)
    _, person = await _whose(session, viewer, business, person_id)
    return await save_notices(session, business.id, person.id if person else None, typed, now=now)


async def resend(
    session: AsyncSession,
    viewer: User,
    business_id: str,
    *,
    person_id: str = "",
    now: datetime,
    public_url: str | None = None,
) -> User:
    """This morning's digest again, now, to the person; the admin must name one."""
    business = await get_business(session, viewer, business_id)
    _, person = await _whose(session, viewer, business, person_id)
    if person is None or not await _reads_digest(session, business, person):
        raise NotFound("Not found.")
    await resend_digest(session, business, person, now=now, public_url=public_url)
    return person


@dataclass(frozen=True)
class FailedSend:
    id: uuid.UUID
    business: str
    person: str | None
    channel: str
    recipient: str
    subject: str
    error: str
    attempts: int
    created_at: datetime


async def failed_sends(session: AsyncSession) -> list[FailedSend]:
    """The failed sends, newest first, in one statement (the agency's: every business)."""
    rows = await session.execute(
        select(
            Notification.id,
            Business.name,
            User.name,
            Notification.channel,
            Notification.recipient,
            Notification.subject,
            Notification.last_error,
            Notification.attempts,
            Notification.created_at,
        )
        .join(Business, Business.id == Notification.business_id)
        .outerjoin(User, User.id == Notification.user_id)
        .where(Notification.status == "failed")
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(FAILED_SHOWN)
    )
    return [FailedSend(*row) for row in rows]
