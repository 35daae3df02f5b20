"""The agency's administration: businesses, people, and who serves which business; each change
is recorded in the audit log (console/people/audit.py) in the same transaction as the change.

Every function takes an `Actor` (the admin, the moment and the client address) so the audit
row says who, when and from where. Refusals raise before anything is written.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from console.agency.business_people import check_member_role, link_person
from console.base.db import after_commit
from console.base.errors import ConsoleError, Invalid, NotFound
from console.base.i18n import FORMS, speaking_to
from console.base.i18n import gettext as _
from console.channels.mail import SmtpMail
from console.channels.providers import ProviderError
from console.contacts.privacy import apply_retention, parse_retention
from console.people import accounts
from console.people.audit import Actor, record_action
from console.people.auth import end_user_sessions
from console.people.passwords import check_policy, hash_password
from console.people.tenancy import AccessChanged, parse_id
from models import (
    Business,
    OwnerMembership,
    Role,
    SecondFactor,
    SecretaryAssignment,
    User,
    UserSession,
)

# A set-password link (an invitation or a reset) is good for three days, and only until a
# password is set with it (it is signed with the moment the password last changed).
PASSWORD_LINK_MAX_AGE = timedelta(days=3)
LINK_PURPOSE = "set-password"
MAX_REPEAT_WINDOW_DAYS = 90


# --- businesses -------------------------------------------------------------------------------


async def create_business(
    session: AsyncSession, actor: Actor, *, slug: str, name: str, timezone: str, locale: str
) -> Business:
    business = await accounts.create_business(
        session, slug=slug, name=name, timezone=timezone or "Asia/Jerusalem", locale=locale or "he"
    )
    await record_action(
        session, actor, "business.created", business_id=business.id, subject=business, slug=slug
    )
    after_commit(session, AccessChanged())  # the admins' open consoles take it in
    return business


async def get_business(session: AsyncSession, business_id: str | uuid.UUID) -> Business:
    business = await session.get(Business, parse_id(business_id))
    if business is None:
        raise NotFound("No such business.")
    return business


async def businesses(session: AsyncSession) -> list[Business]:
    """Every business, by name (the admin's choices)."""
    return list((await session.scalars(select(Business).order_by(Business.name))).all())


async def update_business(
    session: AsyncSession,
    actor: Actor,
    business: Business,
    *,
    name: str,
    timezone: str,
    locale: str,
    retention_days: str | None = None,
    repeat_window_days: str | None = None,
) -> Business:
    """Change the name, time zone, language and (when the form has them) the retention period
    and the repeat window; all are checked before any is changed."""
    if not name.strip():
        raise Invalid("The business needs a name.", field="name")
    if len(name.strip()) > 200:
        raise Invalid("The name may be at most %(n)s characters.", field="name", n=200)
    accounts.check_timezone(timezone)
    accounts.check_locale(locale)
    retention = parse_retention(retention_days) if retention_days is not None else None
    window = (
        parse_repeat_window(repeat_window_days)
        if repeat_window_days is not None
        else business.repeat_window_days
    )
    changed: dict[str, str | int | None] = {
        field: value
        for field, value in (
            ("name", name.strip()),
            ("timezone", timezone),
            ("locale", locale),
            ("repeat_window_days", window),
        )
        if getattr(business, field) != value
    }
    for field, value in changed.items():
        setattr(business, field, value)
    if retention_days is not None and retention != business.retention_days:
        changed["retention_days"] = retention
        await apply_retention(
            session, actor.user, business, retention, now=actor.now, address=actor.address
        )
    await session.flush()
    await record_action(
        session,
        actor,
        "business.updated",
        business_id=business.id,
        subject=business,
        changed=sorted(changed),
    )
    return business


def parse_repeat_window(raw_days: str) -> int:
    """The repeat window as typed: whole days, 1 to 90 (a contact's message or call joins her
    open lead opened within it)."""
    raw = raw_days.strip()
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_REPEAT_WINDOW_DAYS:
        raise Invalid(
            "Enter a number of days between 1 and %(n)s.",
            field="repeat_window_days",
            n=MAX_REPEAT_WINDOW_DAYS,
        )
    return int(raw)


async def set_business_active(
    session: AsyncSession, actor: Actor, business: Business, *, active: bool
) -> Business:
    business.active = active
    await session.flush()
    after_commit(session, AccessChanged())  # its people's open consoles drop or take it
    action = "business.reactivated" if active else "business.deactivated"
    await record_action(session, actor, action, business_id=business.id, subject=business)
    return business


# --- people -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    user: User
    live_sessions: int
    two_factor: bool = False
    # the businesses she serves or he is one of the people of: (name, role there or "")
    businesses: tuple[tuple[str, str], ...] = ()


async def users_page(session: AsyncSession) -> list[UserRow]:
    """Every user with their count of open sessions and whether they have two-factor sign-in
    on, in one statement."""
    live = (
        select(func.count())
        .where(UserSession.user_id == User.id, UserSession.ended_at.is_(None))
        .correlate(User)
        .scalar_subquery()
    )
    second = (
        select(SecondFactor.user_id)
        .where(SecondFactor.user_id == User.id, SecondFactor.enabled_at.is_not(None))
        .correlate(User)
        .exists()
    )
    statement = select(User, live, second).order_by(User.role, User.email)
    rows = (await session.execute(statement)).all()
    linked = await _links(session)
    return [
        UserRow(user, int(count), bool(on), tuple(linked.get(user.id, ())))
        for user, count, on in rows
    ]


async def _links(session: AsyncSession) -> dict[uuid.UUID, list[tuple[str, str]]]:
    """Every user's businesses by name, with the role there of a business's people (one
    statement): the people page shows an owner linked to nothing at a glance."""
    links = union_all(
        select(SecretaryAssignment.user_id, Business.name, literal("")).join(
            Business, Business.id == SecretaryAssignment.business_id
        ),
        select(OwnerMembership.user_id, Business.name, OwnerMembership.member_role).join(
            Business, Business.id == OwnerMembership.business_id
        ),
    ).subquery()
    found: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for user_id, name, role in (await session.execute(select(links).order_by(links.c[1]))).all():
        found.setdefault(user_id, []).append((name, role))
    return found


async def get_user(session: AsyncSession, user_id: str | uuid.UUID) -> User:
    user = await session.get(User, parse_id(user_id))
    if user is None:
        raise NotFound("No such user.")
    return user


def password_link_token(secret_key: str, user: User) -> str:
    """A signed token for the set-password page; void once a password is set with it."""
    serializer = URLSafeTimedSerializer(secret_key, salt=LINK_PURPOSE)
    return serializer.dumps([str(user.id), _stamp(user.password_changed_at)])


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


async def user_of_password_link(
    session: AsyncSession, secret_key: str, token: str, *, now: datetime
) -> User:
    """The user a set-password link is for, or ConsoleError (400) when it is forged, expired,
    used already, or the user is deactivated."""
    serializer = URLSafeTimedSerializer(secret_key, salt=LINK_PURPOSE)
    try:
        user_id, stamp = serializer.loads(token, max_age=int(PASSWORD_LINK_MAX_AGE.total_seconds()))
    except SignatureExpired:
        raise ConsoleError("This link has expired. Ask the agency for a new one.") from None
    except (BadSignature, ValueError, TypeError):
        raise ConsoleError("This link is not valid. Ask the agency for a new one.") from None
    user = await session.get(User, parse_id(str(user_id)))
    if user is None or not user.active or _stamp(user.password_changed_at) != stamp:
        raise ConsoleError("This link is not valid. Ask the agency for a new one.")
    return user


async def set_password_from_link(
    session: AsyncSession,
    secret_key: str,
    token: str,
    *,
    password: str,
    repeated: str,
    now: datetime,
) -> User:
    user = await user_of_password_link(session, secret_key, token, now=now)
    check_policy(password)
    if password != repeated:
        raise Invalid("The two passwords differ.", field="password")
    user.password_hash = hash_password(password)
    user.password_changed_at = now
    await end_user_sessions(session, user.id, now=now)
    await session.flush()
    await record_action(session, Actor(user, now), "user.password_set", subject=user)
    return user


def _unusable_password() -> str:
    """A hash of a random secret nobody knows: the account cannot sign in until a link is used."""
    return hash_password(secrets.token_urlsafe(32))


async def invite_user(
    session: AsyncSession,
    actor: Actor,
    *,
    email: str,
    name: str,
    role: str,
    locale: str = "he",
    business_id: str = "",
    member_role: str = "owner",
) -> User:
    """A new user without a known password; the caller hands out `password_link_token`.
    With a business, the new person serves it (a secretary) or is one of its people (an
    owner, a manager or staff: `member_role`), so his first page shows it."""
    business = None
    if business_id:
        try:
            business = await get_business(session, business_id)
        except NotFound:
            raise Invalid("No such business.", field="business_id") from None
        if role == Role.ADMIN:
            raise Invalid("An admin sees every business: choose none.", field="business_id")
        if role == Role.OWNER:
            check_member_role(member_role)
    user = await accounts.create_user(
        session,
        email=email,
        password=secrets.token_urlsafe(32),
        role=role,
        name=name,
        locale=locale or "he",
    )
    user.password_changed_at = actor.now
    await session.flush()
    await record_action(session, actor, "user.invited", subject=user, email=user.email, role=role)
    if business is not None and role == Role.SECRETARY:
        await assign(session, actor, business, user, backup=False)
    elif business is not None:
        await link_person(session, actor, business, str(user.id), member_role)
    return user


def password_link_mail(user: User, link: str, *, invited: bool) -> tuple[str, str]:
    """The subject and text of the e-mail that carries a set-password link, in the person's
    language and form of address."""
    with speaking_to(user):
        subject = _("Your Mazkira account") if invited else _("Your new Mazkira password")
        opening = (
            _("The agency opened a Mazkira account for you.")
            if invited
            else _("The agency reset your Mazkira password.")
        )
        body = "\n\n".join(
            [
                _("Hello %(name)s,") % {"name": user.name},
                opening,
                _("Set your password with this link; it works once, for three days:"),
                link,
            ]
        )
    return subject, body + "\n"


async def mail_password_link(smtp_url: str | None, user: User, link: str, *, invited: bool) -> bool:
    """E-mail the link when mail is configured; say whether the relay took it (else the admin
    hands it over herself, as the page shows it to her either way)."""
    if not smtp_url:
        return False
    subject, body = password_link_mail(user, link, invited=invited)
    key = f"password-link:{user.id}:{_stamp(user.password_changed_at)}"
    try:
        await SmtpMail(smtp_url).send(user.email, subject, body, idempotency_key=key)
    except (ProviderError, ValueError):
        return False
    return True


def _not_yourself(actor: Actor, user: User) -> None:
    if actor.user is not None and actor.user.id == user.id:
        raise Invalid(
            "You cannot change your own role or deactivate yourself; ask another admin.",
            field="user",
        )


async def change_role(session: AsyncSession, actor: Actor, user: User, role: str) -> User:
    """A new role; the old role's links (assignments or ownerships) go, as they mean nothing."""
    if role not in {r.value for r in Role}:
        raise Invalid("The role must be admin, secretary or owner.", field="role")
    _not_yourself(actor, user)
    if role == user.role:
        return user
    previous = user.role
    await session.execute(delete(SecretaryAssignment).where(SecretaryAssignment.user_id == user.id))
    await session.execute(delete(OwnerMembership).where(OwnerMembership.user_id == user.id))
    user.role = role
    await end_user_sessions(session, user.id, now=actor.now)  # their pages were for the old role
    await session.flush()
    after_commit(session, AccessChanged.of(user.id))
    await record_action(
        session, actor, "user.role_changed", subject=user, role=role, previous=previous
    )
    return user


async def set_user_active(session: AsyncSession, actor: Actor, user: User, *, active: bool) -> int:
    """Deactivate (ending every session) or reactivate; returns how many sessions ended."""
    if not active:
        _not_yourself(actor, user)
    user.active = active
    ended = 0 if active else await end_user_sessions(session, user.id, now=actor.now)
    await session.flush()
    after_commit(session, AccessChanged.of(user.id))
    action = "user.reactivated" if active else "user.deactivated"
    await record_action(session, actor, action, subject=user, sessions_ended=ended)
    return ended


async def reset_password(session: AsyncSession, actor: Actor, user: User) -> User:
    """The old password stops working and every session ends; hand out a new link."""
    user.password_hash = _unusable_password()
    user.password_changed_at = actor.now
    ended = await end_user_sessions(session, user.id, now=actor.now)
    await session.flush()
    await record_action(session, actor, "user.password_reset", subject=user, sessions_ended=ended)
    return user


async def end_sessions(session: AsyncSession, actor: Actor, user: User) -> int:
    ended = await end_user_sessions(session, user.id, now=actor.now)
    await record_action(session, actor, "user.sessions_ended", subject=user, sessions_ended=ended)
    return ended


# --- assignments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    user: User
    is_backup: bool


async def assignments_of(session: AsyncSession, business: Business) -> list[Assignment]:
    rows = (
        await session.execute(
            select(User, SecretaryAssignment.is_backup)
            .join(SecretaryAssignment, SecretaryAssignment.user_id == User.id)
            .where(SecretaryAssignment.business_id == business.id)
            .order_by(SecretaryAssignment.is_backup, User.name)
        )
    ).all()
    return [Assignment(user, bool(backup)) for user, backup in rows]


async def assign(
    session: AsyncSession, actor: Actor, business: Business, user: User, *, backup: bool
) -> None:
    """Assign a secretary to a business (or change whether she is its backup)."""
    if user.role != Role.SECRETARY:
        raise Invalid("Only secretaries are assigned to businesses.", field="user_id")
    if not user.active:
        raise Invalid("This user is deactivated.", field="user_id")
    existing = await session.get(SecretaryAssignment, (user.id, business.id))
    if existing is None:
        session.add(SecretaryAssignment(user_id=user.id, business_id=business.id, is_backup=backup))
        after_commit(session, AccessChanged.of(user.id))  # her open consoles take it in
    else:
        existing.is_backup = backup
    await session.flush()
    await record_action(
        session, actor, "assignment.set", business_id=business.id, subject=user, backup=backup
    )


async def unassign(session: AsyncSession, actor: Actor, business: Business, user: User) -> None:
    existing = await session.get(SecretaryAssignment, (user.id, business.id))
    if existing is None:
        raise NotFound("She is not assigned to this business.")
    await session.delete(existing)
    await session.flush()
    after_commit(session, AccessChanged.of(user.id))  # her open consoles drop it at once
    await record_action(session, actor, "assignment.removed", business_id=business.id, subject=user)


@dataclass(frozen=True)
class StaffingGap:
    business: Business
    secretaries: int
    backups: int


async def staffing_gaps(session: AsyncSession) -> list[StaffingGap]:
    """Active businesses without any secretary, or without a backup (one statement)."""
    counts = (
        select(
            SecretaryAssignment.business_id,
            func.count().label("secretaries"),
            func.count().filter(SecretaryAssignment.is_backup.is_(True)).label("backups"),
        )
        .join(User, User.id == SecretaryAssignment.user_id)
        .where(User.active.is_(True))
        .group_by(SecretaryAssignment.business_id)
        .subquery()
    )
    rows = (
        await session.execute(
            select(
                Business,
                func.coalesce(counts.c.secretaries, 0),
                func.coalesce(counts.c.backups, 0),
            )
            .outerjoin(counts, counts.c.business_id == Business.id)
            .where(Business.active.is_(True), func.coalesce(counts.c.backups, 0) == 0)
            .order_by(Business.name)
        )
    ).all()
    return [StaffingGap(business, int(n), int(b)) for business, n, b in rows]


async def set_addressed_as(
    session: AsyncSession, actor: Actor, user_id: str | uuid.UUID, form: str
) -> User:
    """How the Hebrew interface speaks to this person (they choose it, or an admin for them)."""
    if form not in FORMS:
        raise Invalid("Choose feminine, masculine or neutral plural.", field="addressed_as")
    user = await get_user(session, user_id)
    if user.addressed_as != form:
        previous, user.addressed_as = user.addressed_as, form
        await session.flush()
        await record_action(
            session, actor, "user.addressed_as_changed", subject=user, form=form, previous=previous
        )
    return user
