"""The people of a business: users of the owner role linked to it as its owner, a manager or
staff, each doing in the portal what tenancy.PERMISSIONS allows that role. The agency's admin
links, re-roles and unlinks them; each change is audited with the change."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit
from console.base.errors import Invalid, NotFound
from console.people.audit import Actor, record_action
from console.people.tenancy import AccessChanged, parse_id
from models import Business, MemberRole, OwnerMembership, Role, User

MEMBER_ROLES = tuple(role.value for role in MemberRole)


@dataclass(frozen=True)
class Member:
    user: User
    member_role: str


async def people_of(session: AsyncSession, business: Business) -> list[Member]:
    """The business's people, owners first (one statement)."""
    rows = await session.execute(
        select(User, OwnerMembership.member_role)
        .join(OwnerMembership, OwnerMembership.user_id == User.id)
        .where(OwnerMembership.business_id == business.id)
        .order_by(OwnerMembership.member_role != MemberRole.OWNER, User.name)
    )
    return [Member(user, str(role)) for user, role in rows.all()]


def check_member_role(raw: str) -> str:
    if raw not in MEMBER_ROLES:
        raise Invalid("Choose owner, manager or staff.", field="member_role")
    return raw


async def _person(session: AsyncSession, raw_id: str) -> User:
    try:
        user = await session.get(User, parse_id(raw_id))
    except NotFound:
        user = None
    if user is None:
        raise Invalid("Choose a person.", field="user_id")
    if user.role != Role.OWNER:
        raise Invalid("Only people of the owner role belong to a business.", field="user_id")
    if not user.active:
        raise Invalid("This user is deactivated.", field="user_id")
    return user


async def link_person(
    session: AsyncSession, actor: Actor, business: Business, user_id: str, member_role: str
) -> User:
    """Link a person to the business with a role there, or change that role."""
    role = check_member_role(member_role)
    user = await _person(session, user_id)
    existing = await session.get(OwnerMembership, (user.id, business.id))
    if existing is None:
        session.add(OwnerMembership(user_id=user.id, business_id=business.id, member_role=role))
        action, previous = "person.linked", ""
    elif existing.member_role == role:
        return user
    else:
        action, previous = "person.role_changed", existing.member_role
        existing.member_role = role
    await session.flush()
    after_commit(session, AccessChanged.of(user.id))  # his open portal takes it in
    await record_action(
        session,
        actor,
        action,
        business_id=business.id,
        subject=user,
        member_role=role,
        **({"previous": previous} if previous else {}),
    )
    return user


async def unlink_person(
    session: AsyncSession, actor: Actor, business: Business, user_id: str
) -> None:
    user = await session.get(User, parse_id(user_id))
    existing = None if user is None else await session.get(OwnerMembership, (user.id, business.id))
    if user is None or existing is None:
        raise NotFound("He is not one of this business's people.")
    await session.delete(existing)
    await session.flush()
    after_commit(session, AccessChanged.of(user.id))  # his open portal drops it at once
    await record_action(session, actor, "person.unlinked", business_id=business.id, subject=user)


async def candidates(session: AsyncSession, business: Business) -> list[User]:
    """Active users of the owner role who are not yet people of the business."""
    linked = select(OwnerMembership.user_id).where(OwnerMembership.business_id == business.id)
    statement = (
        select(User)
        .where(User.role == Role.OWNER, User.active.is_(True), User.id.not_in(linked))
        .order_by(User.name)
    )
    return list((await session.scalars(statement)).all())
