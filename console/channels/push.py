"""Web Push to a person's browsers (RFC 8030 delivery, RFC 8291 payload encryption, RFC 8292
VAPID), as one more channel of the notification sender.

A browser's subscription (its push service's endpoint and its keys) is checked strictly before
anything is stored. A message for a person is queued once per subscription of his
(`queue_push`, channel "push", the subscription's id as recipient), so each delivery has its
own status, retries and backoff like any notification; the sender (`WebPush.send`) encrypts
the payload for that browser with `http_ece` and signs the request with the installation's
VAPID key (`py_vapid`), made once at the first start and kept in `push_keys`. A push service
that answers 404 or 410 no longer knows the browser: its subscription is removed.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import Database, dialect_of
from console.base.errors import Invalid
from console.channels.providers import ProviderError, SendResult, check_public_url_async
from models import Notification, PushKeys, PushSubscription, User

# What may reach a person by push, each switched on or off by him on the portal.
KINDS = ("handoff", "urgent", "breach", "call")
# RFC 8030 Urgency per kind: a push service may hold a "normal" one back on a low battery.
URGENCY = {"handoff": "normal", "urgent": "high", "breach": "high", "call": "normal"}
# How long a push service keeps a message for a browser that is offline (RFC 8030 TTL).
TTL_SECONDS = 24 * 3600
# A push service takes at most 4,096 bytes of encrypted payload (RFC 8030 section 7.2); a
# notification shows a few lines, so a long message (a call's answers, in Hebrew two bytes a
# letter) is cut to this many characters, and the tap opens the whole of it.
TITLE_CHARACTERS, BODY_CHARACTERS = 120, 1_000
# The VAPID token's lifetime (RFC 8292: at most 24 hours).
TOKEN_SECONDS = 12 * 3600
ENDPOINT_LENGTH = PushSubscription.endpoint.property.columns[0].type.length or 1000
P256_POINT_BYTES = 65  # an uncompressed P-256 point: 0x04, x, y
AUTH_SECRET_BYTES = 16  # RFC 8291's authentication secret
# A person's browsers at most: a new one beyond this replaces his oldest.
SUBSCRIPTIONS_PER_USER = 10
DEFAULT_CONTACT = "mailto:push@mazkira.invalid"


@dataclass(frozen=True)
class NewSubscription:
    endpoint: str
    p256dh: str
    auth: str


def check_subscription(payload: Any, *, test_origin: str | None = None) -> NewSubscription:
    """A browser's `PushSubscription.toJSON()`, checked: an https endpoint on a public host (or
    one at the configured test origin), a P-256 public key on the curve, a 16-byte secret."""
    if not isinstance(payload, dict):
        raise Invalid("A push subscription is a JSON object.", field="endpoint")
    endpoint = payload.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > ENDPOINT_LENGTH:
        raise Invalid("The push endpoint is missing or too long.", field="endpoint")
    if not _allowed_endpoint(endpoint, test_origin):
        raise Invalid("The push endpoint must be an https address.", field="endpoint")
    keys = payload.get("keys")
    if not isinstance(keys, dict):
        raise Invalid("The subscription's keys are missing.", field="p256dh")
    p256dh = _base64url(keys.get("p256dh"), P256_POINT_BYTES)
    if p256dh is None:
        raise Invalid("The subscription's public key is not a P-256 key.", field="p256dh")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except ValueError:
        raise Invalid("The subscription's public key is not a P-256 key.", field="p256dh") from None
    auth = _base64url(keys.get("auth"), AUTH_SECRET_BYTES)
    if auth is None:
        raise Invalid("The subscription's secret is not 16 bytes.", field="auth")
    return NewSubscription(endpoint, _encode(p256dh), _encode(auth))


def _allowed_endpoint(endpoint: str, test_origin: str | None) -> bool:
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - a malformed port raises
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or parts.fragment:
        return False
    if test_origin and origin_of(endpoint) == test_origin.rstrip("/"):
        return True
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a name: what it resolves to is checked before each send
    return address.is_global and not address.is_multicast


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _base64url(value: Any, length: int) -> bytes | None:
    """The bytes of a base64url text (padding optional) when they are exactly `length`."""
    if not isinstance(value, str) or len(value) > 2 * length or not value.isascii():
        return None
    if value.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_="):
        return None
    try:
        raw = base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == length else None


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def subscribe(
    session: AsyncSession,
    user: User,
    subscription: NewSubscription,
    *,
    session_id: str | None,
    now: datetime,
) -> None:
    """Keep the browser's subscription for this person; an endpoint already known (the same
    browser again, or another person now signed in on it) is taken over, never duplicated."""
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    values = {
        "user_id": user.id,
        "p256dh": subscription.p256dh,
        "auth": subscription.auth,
        "session_id": session_id,
    }
    await session.execute(
        insert(PushSubscription)
        .values(id=uuid.uuid4(), endpoint=subscription.endpoint, created_at=now, **values)
        .on_conflict_do_update(index_elements=["endpoint"], set_=values)
    )
    kept = (
        select(PushSubscription.id)
        .where(PushSubscription.user_id == user.id)
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
        .limit(SUBSCRIPTIONS_PER_USER)
    )
    await session.execute(
        delete(PushSubscription).where(
            PushSubscription.user_id == user.id, PushSubscription.id.not_in(kept.scalar_subquery())
        )
    )


async def unsubscribe(session: AsyncSession, user: User, endpoint: str) -> bool:
    """Forget one browser of his; whether it was his."""
    result = await session.execute(
        delete(PushSubscription).where(
            PushSubscription.user_id == user.id, PushSubscription.endpoint == endpoint
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_sign_in(session: AsyncSession, session_id: str) -> None:
    """Signing out: the browsers that sign-in subscribed are no longer told anything."""
    await session.execute(delete(PushSubscription).where(PushSubscription.session_id == session_id))


async def devices(session: AsyncSession, user: User) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(PushSubscription)
            .where(PushSubscription.user_id == user.id)
        )
        or 0
    )


async def set_kinds(session: AsyncSession, user: User, kinds: list[str]) -> list[str]:
    """What also reaches him by push, from the portal's choices (unknown ones ignored)."""
    chosen = [kind for kind in KINDS if kind in kinds]
    stored = await session.get(User, user.id)
    assert stored is not None
    stored.push_kinds = chosen
    return chosen


async def installation_keys(session: AsyncSession) -> PushKeys:
    """The installation's VAPID key pair, made the first time it is asked for (never shipped:
    each installation has its own)."""
    keys = await session.get(PushKeys, 1)
    if keys is not None:
        return keys
    vapid = Vapid02()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    await session.execute(
        insert(PushKeys)
        .values(id=1, private_pem=vapid.private_pem().decode(), public_key=_encode(public))
        .on_conflict_do_nothing(index_elements=["id"])
    )
    found = await session.get(PushKeys, 1)
    assert found is not None
    return found


async def public_key(session: AsyncSession) -> str:
    """The applicationServerKey browsers subscribe with (read only: made at the start)."""
    return str(await session.scalar(select(PushKeys.public_key).where(PushKeys.id == 1)) or "")


def shortened(text: str, characters: int) -> str:
    return text if len(text) <= characters else text[: characters - 1].rstrip() + "…"


class WebPush:
    """Delivers a queued push row to its browser's push service."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, db: Database | None) -> None:
        self.http = http
        self.db = db
        self.test_origin = settings.push_test_origin
        self.allow_private = settings.allow_private_provider_urls
        public = settings.public_url or ""
        self.contact = settings.push_contact or (
            public if public.startswith("https://") else DEFAULT_CONTACT
        )

    async def send(self, notification: Notification) -> SendResult:
        if self.db is None:
            raise ProviderError("push needs the database of subscriptions", retryable=False)
        async with self.db.transaction() as session:
            subscription = await session.get(PushSubscription, uuid.UUID(notification.recipient))
            keys = await installation_keys(session)
        if subscription is None:
            raise ProviderError("the browser is no longer subscribed", retryable=False)
        endpoint = subscription.endpoint
        if not (self.test_origin and origin_of(endpoint) == self.test_origin.rstrip("/")):
            try:
                await check_public_url_async(endpoint, allow_private=self.allow_private)
            except ValueError as error:
                raise ProviderError(f"refused endpoint: {error}", retryable=False) from None
        payload = json.dumps(
            {
                "title": shortened(notification.subject, TITLE_CHARACTERS),
                "body": shortened(notification.body, BODY_CHARACTERS),
                "url": notification.sender or "/portal",
                "tag": notification.idempotency_key.split(":push:")[0],
            },
            ensure_ascii=False,
        ).encode()
        encrypted = http_ece.encrypt(
            payload,
            private_key=ec.generate_private_key(ec.SECP256R1()),
            dh=_decode(subscription.p256dh),
            auth_secret=_decode(subscription.auth),
            version="aes128gcm",
        )
        claims = {
            "aud": origin_of(endpoint),
            "exp": int(time.time()) + TOKEN_SECONDS,
            "sub": self.contact,
        }
        headers = Vapid02.from_pem(keys.private_pem.encode()).sign(claims)
        headers |= {
            "TTL": str(TTL_SECONDS),
            "Urgency": notification.template or "normal",
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        try:
            response = await self.http.post(endpoint, content=encrypted, headers=headers)
        except httpx.TimeoutException as error:
            raise ProviderError(f"timed out: {error!r}", retryable=True) from error
        except httpx.TransportError as error:
            raise ProviderError(f"connection failed: {error!r}", retryable=True) from error
        status = response.status_code
        if status in (200, 201, 202):
            where = response.headers.get("location", "")[:200]
            return SendResult(provider_id=where or f"push:{subscription.id}", status="sent")
        if status in (404, 410):
            async with self.db.transaction() as session:
                await session.execute(
                    delete(PushSubscription).where(PushSubscription.id == subscription.id)
                )
            raise ProviderError(
                "the push service no longer knows this browser; its subscription was removed",
                retryable=False,
                http_status=status,
            )
        raise ProviderError(
            response.text[:200] or "the push service refused the message",
            retryable=status == 429 or status >= 500,
            http_status=status,
        )
