"""Which businesses a user may see: the one rule every business-data query goes through.

admin: every business; secretary: the businesses she is assigned to; owner: the ones he owns.
Anything outside that set is reported as missing (NotFound → 404), never as forbidden.
Live sockets follow the same rule, read again whenever it may have changed (`live_access`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from console.base.errors import NotFound
from models import Business, OwnerMembership, Role, SecretaryAssignment, User

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])


def visible_business_ids(user: User) -> Select[uuid.UUID]:
    """A subquery of the ids of the businesses `user` may see."""
    return visible_to(user.id, user.role)


def visible_to(user_id: uuid.UUID, role: str) -> Select[uuid.UUID]:
    """The same subquery for a user known only by id and role (read with a group of rows)."""
    if role == Role.ADMIN:
        return select(Business.id)
    if role == Role.SECRETARY:
        return select(SecretaryAssignment.business_id).where(SecretaryAssignment.user_id == user_id)
    if role == Role.OWNER:
        return select(OwnerMembership.business_id).where(OwnerMembership.user_id == user_id)
    raise ValueError(f"unknown role {role!r}")


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


# --- live sockets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessChanged:
    """Queued (`after_commit`) by a change to what users may see: an assignment, a role, a
    user's or a business's activity. Once it has committed, the live hub of every web process
    reads the access of these users' open sockets again (`users` None: of every socket)."""

    users: frozenset[str] | None = None

    @classmethod
    def of(cls, *users: uuid.UUID | str) -> AccessChanged:
        return cls(frozenset(str(user) for user in users))


@dataclass(frozen=True)
class LiveAccess:
    """What a user's open sockets may carry now: events of these businesses, for this role."""

    role: str
    businesses: frozenset[str]


async def live_access(
    session: AsyncSession, user_ids: Iterable[uuid.UUID | str]
) -> dict[str, LiveAccess]:
    """The access of each active user among `user_ids`, by id: the rule above, less the
    deactivated businesses (which take no work; an admin, who may reactivate them, keeps
    them). A user missing from the answer (deactivated, or gone) may follow nothing. At most
    three statements, whatever the number of users."""
    ids = {parse_id(user) for user in user_ids}
    if not ids:
        return {}
    roles = dict(
        (
            await session.execute(
                select(User.id, User.role).where(User.id.in_(ids), User.active.is_(True))
            )
        ).all()
    )
    linked: dict[uuid.UUID, set[str]] = {user: set() for user in roles}
    links = union_all(
        select(SecretaryAssignment.user_id, SecretaryAssignment.business_id, literal("secretary"))
        .join(Business, Business.id == SecretaryAssignment.business_id)
        .where(SecretaryAssignment.user_id.in_(ids), Business.active.is_(True)),
        select(OwnerMembership.user_id, OwnerMembership.business_id, literal("owner"))
        .join(Business, Business.id == OwnerMembership.business_id)
        .where(OwnerMembership.user_id.in_(ids), Business.active.is_(True)),
    )
    for user, business, role in (await session.execute(links)).all():
        if roles.get(user) == role:  # a link of another role means nothing
            linked[user].add(str(business))
    if Role.ADMIN in roles.values():
        every = {str(business) for business in await session.scalars(select(Business.id))}
        linked.update({user: every for user, role in roles.items() if role == Role.ADMIN})
    return {
        str(user): LiveAccess(str(roles[user]), frozenset(businesses))
        for user, businesses in linked.items()
    }
