"""The SIP server's requests to Mazkira are signed with the secret both share:
`X-Mazkira-Signature` = base64url(HMAC-SHA256(secret, "<X-Mazkira-Timestamp>.<body>")), without
padding, as Kamailio's `crypto_hmac_sha256` writes it. A timestamp more than a minute away from
ours is refused, so a request seen once cannot be played again later."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

from console.base.config import Settings
from console.base.errors import Unauthorized

MAX_SKEW_SECONDS = 60


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify(
    settings: Settings, body: bytes, timestamp: str, signature: str, *, now: datetime
) -> None:
    """Refuses (401) a request not signed with our secret, or signed too long ago or ahead."""
    if not settings.sip_secret:
        raise Unauthorized("The phone is not connected (SIP_SECRET is not set).")
    if not timestamp.isdigit() or abs(int(timestamp) - now.timestamp()) > MAX_SKEW_SECONDS:
        raise Unauthorized("The SIP server's timestamp is missing or too far from ours.")
    expected = sign(settings.sip_secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().rstrip("=").encode()):
        raise Unauthorized("The SIP server's signature is missing or wrong.")
