"""What each role's home page shows, loaded in a fixed number of statements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from console.tenancy import scoped, visible_businesses
from models import (
    Business,
    Contact,
    Interaction,
    Lead,
    OwnerMembership,
    SecretaryAssignment,
    User,
)


@dataclass(frozen=True)
class AgencyOverview:
    businesses: list[Business]
    users_by_role: dict[str, int]
    secretaries_by_business: dict[str, int]
    owners_by_business: dict[str, int]


async def businesses_for(session: AsyncSession, user: User) -> list[Business]:
    """The businesses on a secretary's or owner's home page."""
    return [b for b in await visible_businesses(session, user) if b.active]


async def agency_overview(session: AsyncSession, user: User) -> AgencyOverview:
    businesses = await visible_businesses(session, user)
    roles = dict((await session.execute(select(User.role, func.count()).group_by(User.role))).all())
    secretaries = dict(
        (
            await session.execute(
                select(SecretaryAssignment.business_id, func.count()).group_by(
                    SecretaryAssignment.business_id
                )
            )
        ).all()
    )
    owners = dict(
        (
            await session.execute(
                select(OwnerMembership.business_id, func.count()).group_by(
                    OwnerMembership.business_id
                )
            )
        ).all()
    )
    return AgencyOverview(
        businesses=businesses,
        users_by_role=roles,
        secretaries_by_business={str(k): v for k, v in secretaries.items()},
        owners_by_business={str(k): v for k, v in owners.items()},
    )


@dataclass(frozen=True, slots=True)
class HandledRow:
    """One finished call or message on the owner's portal."""

    id: uuid.UUID
    lead_id: uuid.UUID
    business_name: str
    timezone: str
    contact_name: str
    contact_phone: str | None
    subject: str
    secretary_name: str | None
    kind: str
    outcome: str | None
    summary: str
    started_at: datetime
    ended_at: datetime | None


def _handled_statement() -> Select[*tuple[Any, ...]]:
    secretary = aliased(User)
    return (
        select(
            Interaction.id,
            Interaction.lead_id,
            Business.name,
            Business.timezone,
            Contact.name,
            Contact.phone,
            Lead.subject,
            secretary.name,
            Interaction.kind,
            Interaction.outcome,
            Interaction.summary,
            Interaction.started_at,
            Interaction.ended_at,
        )
        .join(Lead, Lead.id == Interaction.lead_id)
        .join(Contact, Contact.id == Interaction.contact_id)
        .join(Business, Business.id == Interaction.business_id)
        .outerjoin(secretary, secretary.id == Interaction.user_id)
        .where(Interaction.status == "done")
    )


async def recently_handled(
    session: AsyncSession, user: User, *, limit: int = 30
) -> list[HandledRow]:
    """The latest calls and messages handled for the user's businesses, newest first."""
    statement = (
        scoped(_handled_statement(), user, Interaction.business_id)
        .order_by(Interaction.started_at.desc())
        .limit(limit)
    )
    return [HandledRow(*row) for row in await session.execute(statement)]


async def handled_row(
    session: AsyncSession, business_id: str, interaction_id: str
) -> HandledRow | None:
    """One handled row, for the live portal (the hub has already checked who may see it)."""
    statement = _handled_statement().where(
        Interaction.id == uuid.UUID(interaction_id),
        Interaction.business_id == uuid.UUID(business_id),
    )
    row = (await session.execute(statement)).one_or_none()
    return HandledRow(*row) if row else None
