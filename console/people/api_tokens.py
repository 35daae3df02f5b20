"""Personal API tokens: how an integration calls /api/v1/ as its user.

The secret is shown once, when the token is made; the table keeps only its SHA-256 (a leaked
table hands out no live token) and its first characters, so a person can tell tokens apart.
A token works while it is not revoked and its user is active, with that user's tenancy.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid, NotFound
from console.base.many_rows import execute_core
from console.people.accounts import normalise_email
from console.people.audit import record_audit
from console.people.tenancy import parse_id
from models import ApiToken, User

SECRET_PREFIX = "mzk_"  # noqa: S105 (a marker, not a secret)
SHOWN_PREFIX = 12  # "mzk_" and eight characters of the secret
MAX_NAME = 100
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    """A token just made, with the only copy of its secret."""

    token: ApiToken
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    session: AsyncSession, user: User, name: str, *, now: datetime, address: str = ""
) -> NewToken:
    name = name.strip()
    if not name:
        raise Invalid("Give the token a name.", field="name")
    if len(name) > MAX_NAME:
        raise Invalid("The name is too long.", field="name")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_secret(secret),
        prefix=secret[:SHOWN_PREFIX],
        created_at=now,
    )
    session.add(token)
    await session.flush()
    await _audit(session, "token.created", user, token, now=now, address=address)
    return NewToken(token, secret)


async def _audit(
    session: AsyncSession, action: str, user: User, token: ApiToken, *, now: datetime, address: str
) -> None:
    """Who made or ended which token (its name and shown prefix, never the secret)."""
    await record_audit(
        session,
        action=action,
        now=now,
        actor=user,
        address=address,
        subject_type="token",
        subject_id=token.id,
        name=token.name,
        prefix=token.prefix,
    )


async def create_token_for_email(
    session: AsyncSession, email: str, name: str, *, now: datetime
) -> NewToken:
    """`mazkira create-token`: a token for the active user with this e-mail."""
    user = await session.scalar(
        select(User).where(User.email == normalise_email(email), User.active.is_(True))
    )
    if user is None:
        raise NotFound("No active user with the e-mail %(email)s.", field="email", email=email)
    return await create_token(session, user, name, now=now)


async def tokens_of(session: AsyncSession, user: User) -> list[ApiToken]:
    """The user's tokens, live ones first, newest first."""
    statement = (
        select(ApiToken)
        .where(ApiToken.user_id == user.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id)
    )
    return list((await session.scalars(statement)).all())


async def revoke_token(
    session: AsyncSession,
    user: User,
    token_id: str | uuid.UUID,
    *,
    now: datetime,
    address: str = "",
) -> ApiToken:
    """End one of the user's own tokens; anyone else's is not found. Revoking twice keeps the
    first time."""
    token = await session.scalar(
        select(ApiToken).where(ApiToken.id == parse_id(token_id), ApiToken.user_id == user.id)
    )
    if token is None:
        raise NotFound("Not found.")
    if token.revoked_at is None:
        token.revoked_at = now
        await session.flush()
        await _audit(session, "token.revoked", user, token, now=now, address=address)
    return token


def secret_hash(secret: str) -> str | None:
    """The hash a secret is looked up by, or None for what cannot be a token's secret."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    return hash_secret(secret)


async def authenticate(
    session: AsyncSession, secret: str, *, now: datetime
) -> tuple[ApiToken, User] | None:
    """The live token with this secret and its active user, in one statement; else None."""
    if (token_hash := secret_hash(secret)) is None:
        return None
    return await authenticate_hash(session, token_hash)


async def authenticate_hash(session: AsyncSession, token_hash: str) -> tuple[ApiToken, User] | None:
    """The live token with this hash and its active user, in one statement; else None."""
    row = (
        await session.execute(
            select(ApiToken, User)
            .join(User, User.id == ApiToken.user_id)
            .where(
                ApiToken.token_hash == token_hash,
                ApiToken.revoked_at.is_(None),
                User.active.is_(True),
            )
        )
    ).one_or_none()
    return (row[0], row[1]) if row is not None else None


@dataclass(frozen=True, slots=True)
class LiveToken:
    """A live token of an active user, as a group of API arrivals needs it: plain columns."""

    id: uuid.UUID
    last_used_at: datetime | None
    user_id: uuid.UUID
    role: str


async def live_tokens(session: AsyncSession, hashes: Collection[str]) -> dict[str, LiveToken]:
    """The live tokens among these hashes, by hash, in one statement however many."""
    rows = await execute_core(session, _LIVE_TOKENS, {"hashes": list(hashes)})
    return {token_hash: LiveToken(*columns) for token_hash, *columns in rows}


_LIVE_TOKENS = (
    select(ApiToken.token_hash, ApiToken.id, ApiToken.last_used_at, User.id, User.role)
    .join(User, User.id == ApiToken.user_id)
    .where(
        ApiToken.token_hash.in_(bindparam("hashes", expanding=True)),
        ApiToken.revoked_at.is_(None),
        User.active.is_(True),
    )
)


def needs_touch(token: ApiToken | LiveToken, now: datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


async def touch_token(session: AsyncSession, token_id: uuid.UUID, *, now: datetime) -> None:
    await touch_tokens(session, [token_id], now=now)


async def touch_tokens(
    session: AsyncSession, token_ids: Collection[uuid.UUID], *, now: datetime
) -> None:
    """Record use, at most once a minute (a busy integration does not write on every call)."""
    await execute_core(
        session,
        update(ApiToken)
        .where(
            ApiToken.id.in_(list(token_ids)),
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - TOUCH_EVERY),
        )
        .values(last_used_at=now),
    )
