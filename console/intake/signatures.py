"""Signatures of inbound provider webhooks: compute them, and check them in constant time.

Every check refuses when the secret is empty, so a missing setting never turns verification off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str | list[str]]) -> str:
    """X-Twilio-Signature: base64 HMAC-SHA1 of the URL followed by every name and value.

    Names are sorted; a repeated name contributes each of its distinct values, sorted, as
    Twilio's own validators do (twilio-python, twilio-node).
    """
    signed = url
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else value
        for each in sorted(set(values)):
            signed += name + each
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_twilio(
    auth_token: str, url: str, params: Mapping[str, str | list[str]], signature: str | None
) -> bool:
    """Whether Twilio signed these form fields for this public URL (query string included).

    Twilio signs the URL sometimes with and sometimes without the scheme's default port, so
    both spellings are accepted, as Twilio's own validators accept them.
    """
    if not auth_token or not signature:
        return False
    return any(
        hmac.compare_digest(twilio_signature(auth_token, variant, params), signature)
        for variant in _default_port_variants(url)
    )


def meta_signature(app_secret: str, raw_body: bytes) -> str:
    """X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_meta(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """Whether Meta signed exactly these bytes (never a re-serialised JSON)."""
    if not app_secret or not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(meta_signature(app_secret, raw_body), header)


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: hex HMAC-SHA256 of the timestamp followed by the token."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def verify_mailgun(
    signing_key: str,
    timestamp: str | None,
    token: str | None,
    signature: str | None,
    *,
    now: float,
    max_age_seconds: int = 300,
) -> bool:
    """Whether Mailgun signed this timestamp and token, and the timestamp is near `now`.

    The caller should also remember tokens it has seen, to refuse a replay inside the window.
    """
    if not signing_key or not timestamp or not token or not signature:
        return False
    try:
        sent_at = float(timestamp)
    except ValueError:
        return False
    if not math.isfinite(sent_at) or abs(now - sent_at) > max_age_seconds:
        return False
    return hmac.compare_digest(mailgun_signature(signing_key, timestamp, token), signature)


def _default_port_variants(url: str) -> list[str]:
    """The URL as given, and with the scheme's default port added or removed."""
    parts = urlsplit(url)
    default_port = DEFAULT_PORTS.get(parts.scheme)
    if default_port is None or parts.hostname is None:
        return [url]
    try:
        port = parts.port
    except ValueError:
        return [url]
    host = parts.netloc.rsplit("@", 1)[-1]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    if port is None:
        other = f"{userinfo}{host}:{default_port}"
    elif port == default_port:
        other = userinfo + host.rsplit(":", 1)[0]
    else:
        return [url]
    return [url, urlunsplit(parts._replace(netloc=other))]
