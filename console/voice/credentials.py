"""A secretary's browser registers at the SIP server with short-lived credentials (Kamailio's
`auth_ephemeral`): the username is "<expiry>:<her SIP user>", the password
base64(HMAC-SHA1(secret, username)). Kamailio checks both, and that she registers only her own
address, so nothing long-lived is ever in the page and nobody can register as another."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

from console.base.config import Settings
from console.base.errors import ConsoleError, NotFound
from models import Role, User

# She fetches new ones this long before they expire.
REFRESH_MARGIN_SECONDS = 120


class NotAPhone(ConsoleError):
    """Only secretaries answer calls; an owner or an admin has no phone here."""

    status = 403


@dataclass(frozen=True)
class PhoneCredentials:
    uri: str  # her SIP address
    username: str
    password: str
    ws_url: str
    expires: int  # Unix time
    refresh_in: int  # seconds until the console should fetch new ones

    def as_json(self) -> dict[str, object]:
        return {
            "uri": self.uri,
            "username": self.username,
            "password": self.password,
            "ws_url": self.ws_url,
            "expires": self.expires,
            "refresh_in": self.refresh_in,
        }


def sip_user(user_id: uuid.UUID) -> str:
    """Her SIP user: her user id's hex."""
    return user_id.hex


def user_of_sip(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(hex=raw) if len(raw) == 32 else None
    except ValueError:
        return None


def password_for(secret: str, username: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def phone_credentials(settings: Settings, user: User, *, now: datetime) -> PhoneCredentials:
    if not settings.sip_secret or not settings.sip_ws_url:
        raise NotFound("The phone is not connected.")
    if user.role != Role.SECRETARY:
        raise NotAPhone("Only secretaries have a phone in the console.")
    lifetime = settings.sip_credentials_seconds
    expires = int(now.timestamp()) + lifetime
    username = f"{expires}:{sip_user(user.id)}"
    return PhoneCredentials(
        uri=f"sip:{sip_user(user.id)}@{settings.sip_domain}",
        username=username,
        password=password_for(settings.sip_secret, username),
        ws_url=settings.sip_ws_url,
        expires=expires,
        refresh_in=max(lifetime - REFRESH_MARGIN_SECONDS, lifetime // 2),
    )
