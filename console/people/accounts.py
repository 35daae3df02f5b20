"""Creating businesses and users, and saying who serves and who owns which business."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit
from console.base.errors import Conflict, Invalid, NotFound
from console.base.i18n import LOCALES
from console.business import hours
from console.people.passwords import hash_password
from console.people.tenancy import AccessChanged
from models import Business, OwnerMembership, Role, SecretaryAssignment, User

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(email: str) -> str:
    """How a user's e-mail is kept and looked up: case and surrounding spaces do not count."""
    return email.strip().lower()


def new_intake_key() -> str:
    return secrets.token_urlsafe(32)


def check_timezone(name: str) -> str:
    hours.check_timezone(name)
    return name


def check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise Invalid(
            "Language must be one of %(choices)s.", field="locale", choices=", ".join(LOCALES)
        )
    return locale


async def create_business(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    timezone: str = "Asia/Jerusalem",
    locale: str = "he",
    always_open: bool = False,
) -> Business:
    slug = slug.strip().lower()
    if not SLUG.match(slug):
        raise Invalid("The slug may hold only a-z, 0-9 and '-', up to 64 characters.", field="slug")
    if not name.strip():
        raise Invalid("The business needs a name.", field="name")
    if await session.scalar(select(Business.id).where(Business.slug == slug)):
        raise Conflict("A business with the slug %(slug)s exists already.", field="slug", slug=slug)
    business = Business(
        slug=slug,
        name=name.strip(),
        timezone=check_timezone(timezone),
        locale=check_locale(locale),
        intake_key=new_intake_key(),
        always_open=always_open,
    )
    session.add(business)
    await session.flush()
    return business


async def rotate_intake_key(session: AsyncSession, business: Business) -> str:
    business.intake_key = new_intake_key()
    await session.flush()
    return business.intake_key


async def business_by_slug(session: AsyncSession, slug: str) -> Business:
    business = await session.scalar(select(Business).where(Business.slug == slug.strip().lower()))
    if business is None:
        raise NotFound("No business with the slug %(slug)s.", slug=slug)
    return business


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    role: str,
    name: str = "",
    locale: str = "he",
    businesses: Iterable[str] = (),
) -> User:
    """A user; a secretary is assigned to, and an owner owns, the businesses named by slug."""
    email = normalise_email(email)
    if not EMAIL.match(email) or len(email) > 254:
        raise Invalid("That is not an e-mail address.", field="email")
    if role not in {r.value for r in Role}:
        raise Invalid("The role must be admin, secretary or owner.", field="role")
    slugs = list(businesses)
    if slugs and role == Role.ADMIN:
        raise Invalid("An admin sees every business; name no businesses.", field="business")
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict(
            "A user with the e-mail %(email)s exists already.", field="email", email=email
        )
    linked = [await business_by_slug(session, slug) for slug in slugs]
    user = User(
        email=email,
        name=name.strip() or email.split("@")[0],
        role=role,
        password_hash=hash_password(password),
        locale=check_locale(locale),
    )
    session.add(user)
    await session.flush()
    for business in linked:
        await link_user(session, user, business)
    return user


async def link_user(
    session: AsyncSession, user: User, business: Business, *, backup: bool = False
) -> None:
    """Assign a secretary to, or make an owner of, a business; repeating it changes nothing."""
    if user.role == Role.SECRETARY:
        existing = await session.get(SecretaryAssignment, (user.id, business.id))
        if existing is None:
            session.add(
                SecretaryAssignment(user_id=user.id, business_id=business.id, is_backup=backup)
            )
    elif user.role == Role.OWNER:
        if await session.get(OwnerMembership, (user.id, business.id)) is None:
            session.add(OwnerMembership(user_id=user.id, business_id=business.id))
    else:
        raise Invalid("Only secretaries and owners are linked to businesses.", field="role")
    await session.flush()
    after_commit(session, AccessChanged.of(user.id))  # open consoles of hers take it in


async def set_user_locale(session: AsyncSession, user_id: object, locale: str) -> None:
    user = await session.get(User, user_id)
    if user is not None:
        user.locale = check_locale(locale)
