"""Outbound mail through an SMTP relay: the e-mail adapter beside the HTTP ones of
console/channels/providers.py, with the same contract (an idempotency key in, a `SendResult` out
or a `ProviderError` that says whether trying again can help)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from console.channels.providers import ProviderError, SendResult, logged_failure

log = logging.getLogger("mazkira.providers")
SMTP_TIMEOUT_SECONDS = 30.0

# SMTP_URL scheme: (default port, STARTTLS, TLS from the first byte).
SMTP_SCHEMES = {
    "smtp": (25, False, False),
    "smtp+starttls": (587, True, False),
    "smtps": (465, False, True),
}


class SmtpMail:
    """Mail through an SMTP relay named by one URL.

    `smtp://` is plain (for a relay on the same machine), `smtp+starttls://` upgrades with
    STARTTLS (default port 587), `smtps://` is TLS from the start (default port 465). The
    default sender is the `from` query parameter: `smtps://user:pass@host?from=a@example.com`.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SMTP_SCHEMES:
            raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
        if not parts.hostname:
            raise ValueError("SMTP_URL has no host")
        default_port, self.start_tls, self.use_tls = SMTP_SCHEMES[parts.scheme]
        try:
            self.port = parts.port or default_port
        except ValueError as error:
            raise ValueError("SMTP_URL has a malformed port") from error
        self.host = parts.hostname
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        senders = parse_qs(parts.query).get("from")
        if not senders or "@" not in senders[0]:
            raise ValueError("SMTP_URL needs the sender: ...?from=agency@example.com")
        self.sender = senders[0]

    def message_id(self, idempotency_key: str) -> str:
        """The same key gives the same Message-ID, so a retried send is recognisably the same."""
        digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
        return f"<{digest}@{self.sender.rsplit('@', 1)[1]}>"

    def build(
        self,
        to: str,
        subject: str,
        text: str,
        *,
        html: str | None = None,
        idempotency_key: str,
        reply_to: str | None = None,
        attachment: Mapping[str, str] | None = None,
    ) -> EmailMessage:
        """The message as it goes out: UTF-8 parts, non-ASCII headers RFC 2047-encoded."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = self.message_id(idempotency_key)
        if reply_to:
            message["Reply-To"] = reply_to
        message.set_content(text, charset="utf-8")
        if html is not None:
            message.add_alternative(html, subtype="html", charset="utf-8")
        if attachment:  # an appointment's .ics: text/calendar; method=…, as calendars expect
            kind, _, rest = attachment["content_type"].partition(";")
            params = dict(part.strip().split("=", 1) for part in rest.split(";") if "=" in part)
            message.add_attachment(
                attachment["text"],
                subtype=kind.strip().split("/", 1)[1],
                charset="utf-8",
                filename=attachment["filename"],
                params=params,
            )
        return message

    async def send(
        self,
        to: str,
        subject: str,
        text: str,
        *,
        html: str | None = None,
        idempotency_key: str,
        reply_to: str | None = None,
        attachment: Mapping[str, str] | None = None,
    ) -> SendResult:
        """Hand the message to the relay; the relay's refusal codes decide `retryable`."""
        try:
            message = self.build(
                to,
                subject,
                text,
                html=html,
                idempotency_key=idempotency_key,
                reply_to=reply_to,
                attachment=attachment,
            )
        except ValueError as error:  # e.g. a line break in a header: no retry will help
            raise ProviderError(f"cannot build the mail: {error}", retryable=False) from error
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=self.start_tls,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise logged_failure(idempotency_key, _smtp_failure(error)) from error
        log.info("smtp relay took %s as %s", idempotency_key, message["Message-ID"])
        return SendResult(provider_id=str(message["Message-ID"]), status="sent")


def _smtp_failure(error: aiosmtplib.SMTPException | OSError) -> ProviderError:
    """4xx replies are temporary, 5xx final; a lost or refused connection is worth a retry."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return ProviderError(
            f"SMTP {error.code}: {error.message}",
            retryable=400 <= error.code < 500,
            code=error.code,
        )
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        reasons = "; ".join(f"{refusal.code} {refusal.message}" for refusal in error.recipients)
        return ProviderError(
            f"SMTP refused the recipient: {reasons}",
            retryable=bool(codes) and all(400 <= code < 500 for code in codes),
            code=codes[0] if codes else None,
        )
    if isinstance(error, aiosmtplib.SMTPServerDisconnected | OSError):
        # OSError covers refused connections and timeouts (aiosmtplib's are TimeoutErrors).
        return ProviderError(f"SMTP connection failed: {error}", retryable=True)
    return ProviderError(f"SMTP failed: {error}", retryable=False)
