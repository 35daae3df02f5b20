"""Which businesses a user may see: the one rule every business-data query goes through.

admin: every business; secretary: the businesses she is assigned to; owner: the ones he owns.
Anything outside that set is reported as missing (NotFound → 404), never as forbidden.
A business's people (users of the owner role) are its owner, managers or staff; what each of
them may do there is PERMISSIONS below: a page asking for a permission someone lacks is missing
for him too (the same 404), and his lists leave that business out.
Live sockets follow the same rule, read again whenever it may have changed (`live_access`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import BindParameter, ColumnElement, Select, bindparam, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from console.base.errors import NotFound
from models import Business, MemberRole, OwnerMembership, Role, SecretaryAssignment, User

T = TypeVar("T")
S = TypeVar("S", bound=Select[Any])

# What a business's people may do in the portal, by their role there (docs/architecture.md).
# Without a permission named, a query asks for what every one of them may: the calls and
# leads handled, tasks, comments and ratings, appointments, the on-call rota, the API.
PERMISSIONS: dict[str, frozenset[str]] = {
    "kpis": frozenset({MemberRole.OWNER, MemberRole.MANAGER}),  # the numbers and their files
    "script": frozenset({MemberRole.OWNER, MemberRole.MANAGER}),  # script and FAQ drafts
    "hours": frozenset({MemberRole.OWNER}),  # hours, closed dates, requests to the agency
    "calendar": frozenset({MemberRole.OWNER}),  # revoking the calendar feed's links
}


def visible_business_ids(user: User, permission: str | None = None) -> Select[uuid.UUID]:
    """A subquery of the ids of the businesses `user` may see (and do `permission` in)."""
    return visible_to(user.id, user.role, permission)


def visible_to(
    user_id: uuid.UUID | BindParameter[uuid.UUID], role: str, permission: str | None = None
) -> Select[uuid.UUID]:
    """The same subquery for a user known only by id and role (read with a group of rows)."""
    if role == Role.ADMIN:
        return select(Business.id)
    if role == Role.SECRETARY:
        return select(SecretaryAssignment.business_id).where(SecretaryAssignment.user_id == user_id)
    if role == Role.OWNER:
        statement = select(OwnerMembership.business_id).where(OwnerMembership.user_id == user_id)
        if permission is not None:
            allowed = sorted(PERMISSIONS[permission])
            statement = statement.where(OwnerMembership.member_role.in_(allowed))
        return statement
    raise ValueError(f"unknown role {role!r}")


def may_see(
    user: User, business_id_column: InstrumentedAttribute[Any], permission: str | None = None
) -> ColumnElement[bool]:
    """The WHERE clause that keeps a query inside the user's businesses."""
    if user.role == Role.ADMIN:
        return business_id_column.is_not(None)
    return business_id_column.in_(visible_business_ids(user, permission))


# The viewer's id in a statement built once for every user of a role (`may_see_bound`): each
# execution passes it as {"viewer_id": user.id}.
VIEWER_ID: BindParameter[uuid.UUID] = bindparam("viewer_id")


def may_see_bound(
    role: str, business_id_column: InstrumentedAttribute[Any], permission: str | None = None
) -> ColumnElement[bool]:
    """`may_see` for a statement built once per role and kept: the same rule, the user's id
    left as the parameter `viewer_id` (building and hashing the subquery per request cost
    more than running it)."""
    if role == Role.ADMIN:
        return business_id_column.is_not(None)
    return business_id_column.in_(visible_to(VIEWER_ID, role, permission))


def scoped(
    statement: S,
    user: User,
    business_id_column: InstrumentedAttribute[Any],
    permission: str | None = None,
) -> S:
    return statement.where(may_see(user, business_id_column, permission))


async def permissions_of(session: AsyncSession, user: User) -> dict[uuid.UUID, frozenset[str]]:
    """What `user` may do in each business he is one of the people of (for the links a page
    offers; the pages themselves ask `get_business` with the permission). One statement."""
    if user.role != Role.OWNER:
        return {}
    rows = await session.execute(
        select(OwnerMembership.business_id, OwnerMembership.member_role).where(
            OwnerMembership.user_id == user.id
        )
    )
    return {
        business: frozenset(name for name, roles in PERMISSIONS.items() if role in roles)
        for business, role in rows.all()
    }


def parse_id(raw: str | uuid.UUID) -> uuid.UUID:
    """A public id from a URL; anything that is not a UUID is simply not found."""
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(raw)
    except (ValueError, AttributeError, TypeError):
        raise NotFound("Not found.") from None


async def visible_businesses(
    session: AsyncSession, user: User, permission: str | None = None
) -> list[Business]:
    statement = scoped(select(Business), user, Business.id, permission).order_by(Business.name)
    return list((await session.scalars(statement)).all())


async def get_business(
    session: AsyncSession,
    user: User,
    business_id: str | uuid.UUID,
    permission: str | None = None,
) -> Business:
    statement = scoped(
        select(Business).where(Business.id == parse_id(business_id)), user, Business.id, permission
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
