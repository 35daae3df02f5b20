"""Sign-in (`sign_in`, then `sign_in_with_code` when a second factor is asked) and server-side
sessions; failed sign-ins are counted and throttled by `sign_in_failures`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.errors import ConsoleError, Invalid, Throttled, Unauthorized
from console.people import sign_in_failures as failures
from console.people import two_factor
from console.people.accounts import normalise_email
from console.people.audit import Actor, record_audit
from console.people.passwords import hash_password, needs_rehash, verify_password
from models import User, UserSession

# A session's last-seen time is written at most this often, so reading pages does not write.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class StartedSession:
    token: str
    record: UserSession


@dataclass(frozen=True)
class Client:
    """Where a sign-in comes from: the client's address, its browser, and the session (the one
    before sign-in) that the new one replaces."""

    address: str
    user_agent: str = ""
    session_id: str | None = None


@dataclass(frozen=True)
class SignedIn:
    user: User
    started: StartedSession
    # Her new recovery codes, when she enrolled on the way in: shown this once.
    recovery_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecondStep:
    """Her password was right; a code from her app is asked next (`token` carries the sign-in
    to `sign_in_with_code`). With an `enrolment` she must first set up her app: the agency
    requires it of her role and she has none yet."""

    user: User
    token: str
    enrolment: two_factor.Enrolment | None = None
    # Why the code just typed was refused: blank (Invalid), wrong (Unauthorized), or too many
    # failures from this address (Throttled).
    refused: ConsoleError | None = None


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    client: Client,
    now: datetime,
) -> SignedIn | SecondStep | None:
    """Check the credentials, start a session and record the sign-in in the audit log; or,
    when she has two-factor sign-in (or must set it up), the second step instead.

    None when the e-mail or password is wrong (or the user deactivated): the failure is counted
    for throttling and audited, so the caller commits as it would a success. A blank field
    raises Invalid, and too many recent failures raise Throttled, before anything is written.
    """
    if not email.strip() or not password:
        raise Invalid("Enter your e-mail and password.", field="email")
    user = await authenticate(
        session, settings, email=email, password=password, address=client.address, now=now
    )
    if user is None:
        await record_audit(
            session,
            action="sign_in.failed",
            now=now,
            actor_email=normalise_email(email),
            address=client.address,
        )
        return None
    token = two_factor.second_step_token(settings, user, now=now)
    if await two_factor.enabled_factor(session, user.id) is not None:
        return SecondStep(user, token)
    if await two_factor.required_for(session, user):
        return SecondStep(user, token, await two_factor.begin_enrolment(session, user, now=now))
    return await _signed_in(session, settings, user, client=client, now=now)


async def sign_in_with_code(
    session: AsyncSession,
    settings: Settings,
    *,
    token: str,
    code: str,
    client: Client,
    now: datetime,
) -> SignedIn | SecondStep:
    """The second step: a code from her app or a recovery code (or, while she enrols, her
    app's first code, which turns two-factor sign-in on and makes her recovery codes).

    A wrong code is counted and throttled with wrong passwords and audited as
    `two_factor.failed`; the answer is then the same step again with why it was refused, for
    the caller to commit and show. An expired or forged token raises Invalid.
    """
    user = await two_factor.second_step_user(session, settings, token, now=now)
    enrolment = await two_factor.pending_enrolment(session, user)
    if not code.strip():
        blank = Invalid("Enter the code from your app.", field="code")
        return SecondStep(user, token, enrolment, blank)
    try:
        await failures.refuse_when_throttled(
            session, settings, account=user.email, address=client.address, now=now
        )
    except Throttled as throttled:
        return SecondStep(user, token, enrolment, throttled)
    actor = Actor(user, now, client.address)
    if enrolment is not None:
        codes = await two_factor.confirm_enrolment(session, settings, actor, code)
        if codes is not None:
            signed = await _signed_in(
                session, settings, user, client=client, now=now, factor="totp"
            )
            return SignedIn(signed.user, signed.started, tuple(codes))
    else:
        used = await two_factor.check_code(session, settings, user, code, now=now)
        if used == "recovery":
            await record_audit(
                session,
                action="two_factor.recovery_used",
                now=now,
                actor=user,
                address=client.address,
                subject_type="user",
                subject_id=user.id,
            )
        if used is not None:
            return await _signed_in(session, settings, user, client=client, now=now, factor=used)
    failures.count_failure(session, account=user.email, address=client.address, now=now)
    await record_audit(
        session,
        action="two_factor.failed",
        now=now,
        actor_email=user.email,
        address=client.address,
        subject_type="user",
        subject_id=user.id,
    )
    wrong = Unauthorized("That code is not right. Try the newest one.", field="code")
    return SecondStep(user, token, enrolment, wrong)


async def _signed_in(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    client: Client,
    now: datetime,
    factor: str = "",
) -> SignedIn:
    """Her sign-in is complete: her failures from this address are forgiven, the sign-in is
    audited (with the second factor used, if any) and her session starts."""
    await failures.forgive(session, account=user.email, address=client.address)
    details: dict[str, Any] = {"second_factor": factor} if factor else {}
    await record_audit(
        session,
        action="sign_in",
        now=now,
        actor=user,
        address=client.address,
        subject_type="user",
        subject_id=user.id,
        **details,
    )
    started = await start_session(
        session,
        settings,
        user,
        now=now,
        address=client.address,
        user_agent=client.user_agent,
        replaces=client.session_id,
    )
    return SignedIn(user, started)


async def authenticate(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
    now: datetime,
) -> User | None:
    """The active user with these credentials, or None (the failure is recorded). Her
    failures are forgiven only once she is signed in (a second factor may still be asked).

    Too many failures for the account from this client address (in a short window) or from
    the address for any account (in a longer one) raise Throttled, without checking the
    password, until the window passes. Failures from elsewhere never hold this address back.
    """
    account = normalise_email(email)
    await failures.refuse_when_throttled(
        session, settings, account=account, address=address, now=now
    )
    user = await session.scalar(select(User).where(User.email == account))
    password_ok = verify_password(user.password_hash if user else None, password)
    if user is None or not password_ok or not user.active:
        failures.count_failure(session, account=account, address=address, now=now)
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


async def start_session(
    session: AsyncSession,
    settings: Settings,
    user: User,
    *,
    now: datetime,
    address: str = "",
    user_agent: str = "",
    replaces: str | None = None,
) -> StartedSession:
    """A new session for `user`; the one it replaces (the pre-login one) ends now."""
    if replaces:
        await end_session(session, replaces, now=now)
    token = secrets.token_urlsafe(32)
    record = UserSession(
        id=token_id(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
        address=address[:64],
        user_agent=user_agent[:300],
    )
    session.add(record)
    await session.flush()
    return StartedSession(token=token, record=record)


# A session and its user, by the session's stored id: every signed-in request reads it, so the
# statement is built once, not per request.
SESSION_AND_USER = (
    select(UserSession, User)
    .join(User, User.id == UserSession.user_id)
    .where(UserSession.id == bindparam("session_id"))
)


async def load_session(
    session: AsyncSession, settings: Settings, token: str, *, now: datetime
) -> tuple[UserSession, User] | None:
    """The live session behind a cookie's token and its user, or None when it has ended."""
    row = (await session.execute(SESSION_AND_USER, {"session_id": token_id(token)})).one_or_none()
    if row is None:
        return None
    record, user = row
    if not _live(settings, record, user, now):
        return None
    return record, user


async def session_is_live(
    session: AsyncSession, settings: Settings, session_id: str, *, now: datetime
) -> bool:
    """Whether a session (by its stored id) is still good: not ended, expired or deactivated."""
    row = (await session.execute(SESSION_AND_USER, {"session_id": session_id})).one_or_none()
    return row is not None and _live(settings, row[0], row[1], now)


def _live(settings: Settings, record: UserSession, user: User, now: datetime) -> bool:
    idle_limit = record.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    return record.ended_at is None and user.active and now < record.expires_at and now < idle_limit


def needs_touch(record: UserSession, now: datetime) -> bool:
    return now - record.last_seen_at >= TOUCH_EVERY


async def touch_session(session: AsyncSession, session_id: str, *, now: datetime) -> None:
    await session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.ended_at.is_(None))
        .values(last_seen_at=now)
    )


async def end_session(session: AsyncSession, session_id: str, *, now: datetime) -> None:
    await session.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.ended_at.is_(None))
        .values(ended_at=now)
    )


async def end_user_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, now: datetime, keep: str | None = None
) -> int:
    """End every live session of a user (but `keep`); returns how many ended."""
    statement = update(UserSession).where(
        UserSession.user_id == user_id, UserSession.ended_at.is_(None)
    )
    if keep:
        statement = statement.where(UserSession.id != keep)
    result = await session.execute(statement.values(ended_at=now))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_expired(session: AsyncSession, settings: Settings, *, now: datetime) -> int:
    """Forget sessions that ended or expired a day ago and failures outside every window."""
    grace = now - timedelta(days=1)
    ended = await session.execute(
        delete(UserSession).where((UserSession.expires_at < grace) | (UserSession.ended_at < grace))
    )
    await failures.purge(session, settings, now=now)
    return int(ended.rowcount)  # type: ignore[attr-defined]
