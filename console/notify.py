"""Notifications out of the system (e-mail, SMS, WhatsApp): queued once, sent once, retried.

A service queues a row under an idempotency key in its own transaction. The sending job leases
each due row in a short transaction of its own (`lease`: a conditional UPDATE that moves
`next_attempt_at` past the send and counts the attempt), so two workers never send the same row
and a worker killed mid-send leaves a row that falls due again when the lease runs out. The send
itself happens outside any transaction; its outcome is recorded in another short one. A retry
reuses the row's key, which the providers see (Twilio's idempotency token, the SMTP Message-ID).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from console.config import ConfigError, Settings
from console.contacts import normalise_email, normalise_phone
from console.db import Database, after_commit, dialect_of
from console.errors import Invalid
from console.providers import (
    HTTP_TIMEOUT,
    MetaWhatsApp,
    ProviderError,
    SendResult,
    SmtpMail,
    TwilioMessages,
)
from console.scheduler import RunSoon
from models import Notification
from models.base import new_id

log = logging.getLogger("mazkira.notify")

CHANNELS = ("email", "sms", "whatsapp")
# Longer than any send can take (HTTP times out after 15 s, SMTP after 30 s).
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 6
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(minutes=60)
# Sends of one run in flight at once: a slow provider must not hold the whole batch.
CONCURRENT_SENDS = 8
KEY_LENGTH = Notification.idempotency_key.property.columns[0].type.length or 160
SUBJECT_LENGTH = Notification.subject.property.columns[0].type.length or 300
ERROR_LENGTH = Notification.last_error.property.columns[0].type.length or 500

Send = Callable[[Notification], Awaitable[SendResult]]
Outcome = Literal["sent", "retried", "failed"]


@dataclass(frozen=True)
class NotificationQueued:
    """Queued after commit when a notification was inserted, so the sender can be woken."""

    id: uuid.UUID


@dataclass
class SendReport:
    """What one run did: sent, left queued for a retry, or given up on."""

    sent: int = 0
    retried: int = 0
    failed: int = 0

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


async def queue_notification(
    session: AsyncSession,
    *,
    key: str,
    business_id: uuid.UUID,
    channel: str,
    recipient: str,
    subject: str = "",
    body: str = "",
    user_id: uuid.UUID | None = None,
    alert_id: uuid.UUID | None = None,
    now: datetime,
) -> bool:
    """Insert the notification unless its key was queued before; say whether it was new."""
    if not key or len(key) > KEY_LENGTH:
        raise ValueError(f"a notification needs an idempotency key of 1-{KEY_LENGTH} characters")
    recipient = checked_recipient(channel, recipient)
    subject = " ".join(subject.split())  # one header line, whatever the caller wrote
    if len(subject) > SUBJECT_LENGTH:
        raise Invalid("This text is too long.", field="subject")
    insert = postgresql.insert if dialect_of(session) == "postgresql" else sqlite.insert
    notification_id = new_id()
    statement = (
        insert(Notification)
        .values(
            id=notification_id,
            idempotency_key=key,
            business_id=business_id,
            user_id=user_id,
            alert_id=alert_id,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            created_at=now,
            next_attempt_at=now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Notification.id)
    )
    inserted = await session.scalar(statement) is not None
    if inserted:
        after_commit(session, NotificationQueued(notification_id))
        after_commit(session, RunSoon("send_notifications"))
    return inserted


def checked_recipient(channel: str, recipient: str) -> str:
    """The recipient in the form the channel sends to: a lower-cased e-mail or E.164."""
    if channel not in CHANNELS:
        raise Invalid("Unknown channel.", field="channel")
    if channel == "email":
        email = normalise_email(recipient)
        if email is None:
            raise Invalid("That is not an e-mail address.", field="recipient")
        return email
    return normalise_phone(recipient)


class Senders:
    """The provider adapters the settings configure, sharing one HTTP client."""

    def __init__(self, settings: Settings) -> None:
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        allow_private = settings.allow_private_provider_urls
        try:
            self.mail = SmtpMail(settings.smtp_url) if settings.smtp_url else None
            self.twilio = (
                TwilioMessages(
                    settings.twilio_account_sid,
                    settings.twilio_auth_token,
                    base_url=settings.twilio_api_url,
                    http=self.http,
                    allow_private=allow_private,
                )
                if settings.twilio_account_sid and settings.twilio_auth_token
                else None
            )
            self.whatsapp = (
                MetaWhatsApp(
                    settings.whatsapp_access_token,
                    settings.whatsapp_phone_number_id,
                    base_url=settings.whatsapp_api_url,
                    http=self.http,
                    allow_private=allow_private,
                )
                if settings.whatsapp_access_token and settings.whatsapp_phone_number_id
                else None
            )
        except ValueError as error:  # the adapters' messages name the setting, not its secret
            raise ConfigError(str(error)) from None
        self.twilio_from = settings.twilio_from
        self.secrets = _secrets_of(settings, self.mail)

    def for_channel(self, channel: str) -> Send:
        """The send for this channel, or a final error when its provider is not configured."""
        if channel == "email" and self.mail is not None:
            mail = self.mail

            async def send_mail(notification: Notification) -> SendResult:
                return await mail.send(
                    notification.recipient,
                    notification.subject,
                    notification.body,
                    idempotency_key=notification.idempotency_key,
                )

            return send_mail
        if channel == "sms" and self.twilio is not None and self.twilio_from:
            twilio, sender = self.twilio, self.twilio_from

            async def send_sms(notification: Notification) -> SendResult:
                return await twilio.send_sms(
                    notification.recipient,
                    sender,
                    notification.body,
                    idempotency_key=notification.idempotency_key,
                )

            return send_sms
        if channel == "whatsapp" and self.whatsapp is not None:
            whatsapp = self.whatsapp

            async def send_whatsapp(notification: Notification) -> SendResult:
                return await whatsapp.send_text(
                    notification.recipient,
                    notification.body,
                    idempotency_key=notification.idempotency_key,
                )

            return send_whatsapp
        raise ProviderError(f"no provider configured for {channel}", retryable=False)

    def redact(self, text: str) -> str:
        """The text without any configured secret, short enough for `last_error`."""
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text[:ERROR_LENGTH]

    async def aclose(self) -> None:
        await self.http.aclose()


def _secrets_of(settings: Settings, mail: SmtpMail | None) -> list[str]:
    found = [settings.twilio_auth_token, settings.whatsapp_access_token]
    if mail is not None and mail.password:
        found += [mail.password, quote(mail.password, safe="")]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


async def send_due_notifications(
    db: Database, senders: Senders, *, now: datetime, limit: int = 50
) -> SendReport:
    """Send what is due, each row by exactly one worker; safe to run on many at once."""
    async with db.transaction(write=False) as session:
        due = (
            await session.execute(
                select(Notification.id, Notification.attempts)
                .where(Notification.status == "queued", Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at)
                .limit(limit)
            )
        ).all()
    report = SendReport()
    gate = asyncio.Semaphore(CONCURRENT_SENDS)

    async def send_one(notification_id: uuid.UUID, attempts: int) -> None:
        async with gate:
            if attempts >= MAX_ATTEMPTS:
                if await _give_up(db, notification_id, now=now):
                    report.count("failed")
                return
            notification = await lease(db, notification_id, now=now)
            if notification is not None:
                report.count(await _deliver(db, senders, notification, now=now))

    await asyncio.gather(*(send_one(row.id, row.attempts) for row in due))
    return report


async def lease(db: Database, notification_id: uuid.UUID, *, now: datetime) -> Notification | None:
    """Take the row for one send attempt; None when another worker has it or it is not due."""
    async with db.transaction() as session:
        result = await session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.status == "queued",
                Notification.next_attempt_at <= now,
                Notification.attempts < MAX_ATTEMPTS,
            )
            .values(next_attempt_at=now + LEASE, attempts=Notification.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await session.get(Notification, notification_id)


def backoff(attempts: int) -> timedelta:
    """The wait after the given number of failed attempts: 1, 2, 4, 8 … minutes, at most 60."""
    doublings = min(max(0, attempts - 1), 16)  # the cap is reached long before
    return min(FIRST_BACKOFF * (1 << doublings), MAX_BACKOFF)


async def _deliver(
    db: Database, senders: Senders, notification: Notification, *, now: datetime
) -> Outcome:
    """Send outside any transaction, then record the outcome in a short one."""
    try:
        result = await senders.for_channel(notification.channel)(notification)
    except ProviderError as error:
        failure = error
    except Exception as error:  # a bug or a refused URL must not stop the other sends
        log.exception("sending notification %s broke", notification.id)
        failure = ProviderError(f"{type(error).__name__}: {error}", retryable=True)
    else:
        # A success counts even if this worker's lease ran out meanwhile.
        await _record(db, notification, status="sent", sent_at=now, provider_id=result.provider_id)
        log.info("notification %s sent as %s", notification.id, result.provider_id)
        return "sent"
    error_text = senders.redact(_describe(failure))
    if failure.retryable and notification.attempts < MAX_ATTEMPTS:
        retry_at = now + backoff(notification.attempts)
        await _record(
            db, notification, lease_held=True, next_attempt_at=retry_at, last_error=error_text
        )
        log.warning(
            "notification %s failed, retrying at %s: %s", notification.id, retry_at, error_text
        )
        return "retried"
    await _record(db, notification, lease_held=True, status="failed", last_error=error_text)
    log.warning("notification %s failed for good: %s", notification.id, error_text)
    return "failed"


def _describe(error: ProviderError) -> str:
    """The provider's message, after its HTTP status and error code when it gave them."""
    known = [f"HTTP {error.http_status}"] if error.http_status is not None else []
    known += [f"code {error.code}"] if error.code is not None else []
    return f"{', '.join(known)}: {error.message}" if known else error.message


async def _record(
    db: Database, notification: Notification, *, lease_held: bool = False, **values: Any
) -> None:
    """Write a send's outcome to a row still queued; with `lease_held`, only if no later lease
    took the row meanwhile (its attempts still those of this send)."""
    conditions = [Notification.id == notification.id, Notification.status == "queued"]
    if lease_held:
        conditions.append(Notification.attempts == notification.attempts)
    async with db.transaction() as session:
        await session.execute(
            update(Notification)
            .where(*conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def _give_up(db: Database, notification_id: uuid.UUID, *, now: datetime) -> bool:
    """Fail a row whose every attempt was used, the last by a worker that never reported back."""
    async with db.transaction() as session:
        result = await session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.status == "queued",
                Notification.next_attempt_at <= now,
                Notification.attempts >= MAX_ATTEMPTS,
            )
            .values(
                status="failed",
                last_error=f"gave up after {MAX_ATTEMPTS} attempts; the last never reported back",
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]
