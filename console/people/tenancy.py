"""Which businesses a user may see: the one rule every business-data query goes through.

admin: every business; secretary: the businesses she is assigned to; owner: the ones he owns.
Anything outside that set is reported as missing (NotFound → 404), never as forbidden.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from console.base.errors import NotFound
from models import Business, OwnerMembership, Role, SecretaryAssignment, User

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])


def visible_business_ids(user: User) -> Select[uuid.UUID]:
    """A subquery of the ids of the businesses `user` may see."""
    if user.role == Role.ADMIN:
        return select(Business.id)
    if user.role == Role.SECRETARY:
        return select(SecretaryAssignment.business_id).where(SecretaryAssignment.user_id == user.id)
    if user.role == Role.OWNER:
        return select(OwnerMembership.business_id).where(OwnerMembership.user_id == user.id)
    raise ValueError(f"unknown role {user.role!r}")


def may_see(user: User, business_id_column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """The WHERE clause that keeps a query inside the user's businesses."""
    if user.role == Role.ADMIN:
        return business_id_column.is_not(None)
    return business_id_column.in_(visible_business_ids(user))


def scoped(statement: S, user: User, business_id_column: InstrumentedAttribute[Any]) -> S:
    return statement.where(may_see(user, business_id_column))


def parse_id(raw: str | uuid.UUID) -> uuid.UUID:
    """A public id from a URL; anything that is not a UUID is simply not found."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        raise NotFound("Not found.") from None


async def visible_businesses(session: AsyncSession, user: User) -> list[Business]:
    statement = scoped(select(Business), user, Business.id).order_by(Business.name)
    return list((await session.scalars(statement)).all())


async def get_business(session: AsyncSession, user: User, business_id: str | uuid.UUID) -> Business:
    statement = scoped(
        select(Business).where(Business.id == parse_id(business_id)), user, Business.id
    )
    business = await session.scalar(statement)
    if business is None:
        raise NotFound("No such business.")
    return business


async def get_business_by_slug(session: AsyncSession, user: User, slug: str) -> Business:
    statement = scoped(select(Business).where(Business.slug == slug), user, Business.id)
    business = await session.scalar(statement)
    if business is None:
        raise NotFound("No such business.")
    return business


async def get_scoped(
    session: AsyncSession, user: User, model: type[T], object_id: str | uuid.UUID
) -> T:
    """Load one business-owned object by id, or NotFound when it is outside the user's reach."""
    column = model.business_id  # type: ignore[attr-defined]
    statement = scoped(
        select(model).where(model.id == parse_id(object_id)),  # type: ignore[attr-defined]
        user,
        column,
    ).execution_options(populate_existing=True)
    found = await session.scalar(statement)
    if found is None:
        raise NotFound("Not found.")
    return found
