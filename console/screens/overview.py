"""What each role's home page shows, loaded in a fixed number of statements."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.people.tenancy import visible_businesses
from console.screens.portal import (
    handled_row as handled_row,  # the live portal's row (routes/live.py)
)
from models import Business, OwnerMembership, Role, Script, SecretaryAssignment, User


@dataclass(frozen=True)
class AgencyOverview:
    businesses: list[Business]
    users_by_role: dict[str, int]
    secretaries_by_business: dict[str, int]
    owners_by_business: dict[str, int]
    # Businesses whose script draft was last saved by their owner: waiting for the agency.
    owner_drafts: dict[str, str]


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
    owner_drafts = dict(
        (
            await session.execute(
                select(Script.business_id, User.name)
                .join(User, User.id == Script.created_by_id)
                .where(Script.status == "draft", User.role == Role.OWNER)
            )
        ).all()
    )
    return AgencyOverview(
        businesses=businesses,
        users_by_role=roles,
        secretaries_by_business={str(k): v for k, v in secretaries.items()},
        owners_by_business={str(k): v for k, v in owners.items()},
        owner_drafts={str(k): v for k, v in owner_drafts.items()},
    )
