"""Inbound e-mail in the format of Mailgun's forwarding routes.

Mailgun signs each post with a hex HMAC-SHA256 of `timestamp` + `token` under the webhook
signing key; a stale timestamp or a token seen before is refused. The business is the one whose
e-mail line is a recipient; an HTML-only body is reduced to plain text (never shown as HTML).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from email.utils import getaddresses, parseaddr

from bs4 import BeautifulSoup

from console.base.config import Settings
from console.base.errors import Invalid, Unauthorized
from console.base.ratelimit import Limiter
from console.intake.arrivals import MAX_TEXT, Arrival, ByLine
from console.intake.signatures import verify_mailgun

MAX_AGE_SECONDS = 300
MESSAGE_ID_LENGTH = 200
DROPPED = ("script", "style", "head", "title", "template")
BLOCKS = ("p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table")


async def verify(
    settings: Settings, limiter: Limiter, fields: Mapping[str, str], *, now: float
) -> None:
    """A fresh signature, never used before for another message. (Mailgun's signature covers
    its timestamp and token, not the message: a replay could carry anything else.)"""
    timestamp, token = fields.get("timestamp"), fields.get("token")
    if not verify_mailgun(
        settings.email_webhook_key,
        timestamp,
        token,
        fields.get("signature"),
        now=now,
        max_age_seconds=MAX_AGE_SECONDS,
    ):
        raise Unauthorized("The e-mail signature is missing, wrong or too old.")
    this = message_id(fields)
    if await limiter.remember(f"mailgun:{token}", this, MAX_AGE_SECONDS * 2) != this:
        raise Unauthorized("This e-mail signature was used before, for another message.")


def mail_arrival(fields: Mapping[str, str], *, now: datetime) -> Arrival:
    """A forwarded mail as an arrival on the first of its recipients that is a line."""
    name, sender = parseaddr(fields.get("from") or fields.get("sender") or "")
    sender = (fields.get("sender") or sender).strip()
    if not sender:
        raise Invalid("The field %(name)s is missing.", field="sender", name="sender")
    recipients = tuple(address for _, address in getaddresses([fields.get("recipient") or ""]))
    subject = " ".join((fields.get("subject") or "").split())[:300]
    text = (fields.get("body-plain") or "").strip() or html_to_text(fields.get("body-html") or "")
    return Arrival(
        ByLine("email", recipients),
        "email",
        now,
        email=sender,
        name=name,
        subject=subject,
        text=text[:MAX_TEXT],
        source="E-mail",
        message_id=message_id(fields),
    )


def message_id(fields: Mapping[str, str]) -> str:
    """The Message-Id header, or (without one) a digest of what identifies the message."""
    raw = (fields.get("Message-Id") or fields.get("message-id") or "").strip().strip("<>")
    if raw and len(raw) <= MESSAGE_ID_LENGTH:
        return raw
    seed = raw or "\n".join(
        fields.get(name) or "" for name in ("sender", "timestamp", "subject", "body-plain")
    )
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def html_to_text(html: str) -> str:
    """The words of an HTML body, one block per line, without scripts, styles or markup."""
    soup = BeautifulSoup(html, "html.parser")
    for element in soup(DROPPED):
        element.decompose()
    for element in soup(BLOCKS):
        element.insert_before("\n")
        element.insert_after("\n")
    for element in soup("br"):
        element.replace_with("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().splitlines())
    return "\n".join(line for line in lines if line)
