"""Notifications out of the system (e-mail, SMS, WhatsApp, Web Push): queued once, sent once,
retried.

A service queues a row under an idempotency key in its own transaction. The sending job leases
its due rows in one short transaction (`lease`: a conditional UPDATE that moves
`next_attempt_at` past the send and counts the attempt), so two workers never send the same row
and a worker killed mid-send leaves a row that falls due again when the lease runs out. The send
itself happens outside any transaction; its outcome is recorded in another short one, shared
with the outcomes of the batch's other sends that finished meanwhile. A retry
reuses the row's key, which the providers see (Twilio's idempotency token, the SMTP Message-ID).
"""

from __future__ import annotations

import asyncio
import hashlib
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

from console.base.characters import without_bidi_controls
from console.base.config import ConfigError, Settings
from console.base.db import Database, after_commit, dialect_of
from console.base.errors import Invalid, NotFound
from console.base.scheduler import RunSoon
from console.channels.deliveries import record_send
from console.channels.lines import on_twilio
from console.channels.mail import SmtpMail
from console.channels.providers import (
    HTTP_TIMEOUT,
    MetaWhatsApp,
    ProviderError,
    SendResult,
    TwilioMessages,
)
from console.channels.push import KINDS as PUSH_KINDS
from console.channels.push import URGENCY, WebPush
from console.contacts.contacts import normalise_email, normalise_phone
from models import Notification, PushSubscription, User
from models.base import new_id

log = logging.getLogger("mazkira.notify")

CHANNELS = ("email", "sms", "whatsapp", "push")
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
    buttons: list[dict[str, str]] | None = None,
    interaction_id: uuid.UUID | None = None,
    sender: str = "",
    template: str = "",
    lead_id: uuid.UUID | None = None,
    now: datetime,
    send_at: datetime | None = None,
    attachment: dict[str, str] | None = None,
) -> bool:
    """Insert the notification unless its key was queued before; say whether it was new.
    `buttons` ([{"id", "title"}]) go with a WhatsApp message as reply buttons. A reply to a
    contact names its `interaction`, the business's line it goes out from (`sender`) and, for
    WhatsApp outside the 24-hour window, the approved `template` ("name:language"). `send_at`
    holds it until then (an owner who is away: console/people/availability.py)."""
    if not key or len(key) > KEY_LENGTH:
        raise ValueError(f"a notification needs an idempotency key of 1-{KEY_LENGTH} characters")
    recipient = checked_recipient(channel, recipient)
    # one header line, whatever the caller wrote; plain text shows bidirectional controls'
    # reordering (a name as another number), so none goes out
    subject = " ".join(without_bidi_controls(subject).split())
    body = without_bidi_controls(body)
    if buttons:
        buttons = [{k: without_bidi_controls(v) for k, v in button.items()} for button in buttons]
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
            interaction_id=interaction_id,
            lead_id=lead_id,
            sender=sender,
            template=template,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            buttons=buttons if channel == "whatsapp" and buttons else None,
            attachment=attachment if channel == "email" else None,
            created_at=now,
            next_attempt_at=max(send_at, now) if send_at else now,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Notification.id)
    )
    inserted = await session.scalar(statement) is not None
    if inserted:
        after_commit(session, NotificationQueued(notification_id))
        after_commit(session, RunSoon("send_notifications"))
    return inserted


async def queue_push(
    session: AsyncSession,
    user: User,
    *,
    kind: str,
    key: str,
    business_id: uuid.UUID,
    title: str,
    body: str,
    path: str = "/portal",
    now: datetime,
    send_at: datetime | None = None,
) -> int:
    """Queue the message for each of his browsers when he wants this kind by push; how many
    were new. `path` is the page of the console a tap on it opens."""
    wanted = kind == "test" or kind in (user.push_kinds or [])  # a test is asked for by him
    if kind not in (*PUSH_KINDS, "test") or not wanted or not user.active:
        return 0
    subscriptions = list(
        await session.scalars(
            select(PushSubscription.id).where(PushSubscription.user_id == user.id)
        )
    )
    new = 0
    for subscription_id in subscriptions:
        each = f"{key}:push:{subscription_id}"
        if len(each) > KEY_LENGTH:
            each = f"push:{hashlib.sha256(each.encode()).hexdigest()}"
        new += await queue_notification(
            session,
            key=each,
            business_id=business_id,
            channel="push",
            recipient=str(subscription_id),
            subject=title,
            body=body,
            user_id=user.id,
            sender=path if path.startswith("/") and not path.startswith("//") else "/portal",
            template=URGENCY.get(kind, "normal"),
            now=now,
            send_at=send_at,
        )
    return new


def checked_recipient(channel: str, recipient: str) -> str:
    """The recipient in the form the channel sends to: a lower-cased e-mail or E.164."""
    if channel not in CHANNELS:
        raise Invalid("Unknown channel.", field="channel")
    if channel == "push":  # one browser: its subscription's id (queue_push)
        try:
            return str(uuid.UUID(recipient))
        except ValueError:
            raise Invalid("Unknown push subscription.", field="recipient") from None
    if channel == "email":
        email = normalise_email(recipient)
        if email is None:
            raise Invalid("That is not an e-mail address.", field="recipient")
        return email
    return normalise_phone(recipient)


class Senders:
    """The provider adapters the settings configure, sharing one HTTP client."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.http = httpx.AsyncClient(timeout=HTTP_TIMEOUT)
        # Web Push reads each row's subscription and the installation's key from the database.
        self.push = WebPush(settings, self.http, db)
        allow_private = settings.allow_private_provider_urls
        try:
            self.mail = SmtpMail(settings.smtp_url) if settings.smtp_url else None
            self.twilio = (
                TwilioMessages(
                    settings.twilio_account_sid,
                    settings.twilio_auth_token,
                    base_url=settings.twilio_api_url,
                    http=self.http,
                    status_callback=(
                        f"{settings.public_url}/intake/twilio/status"
                        if settings.public_url
                        else None
                    ),
                    allow_private=allow_private,
                )
                if settings.twilio_account_sid and settings.twilio_auth_token
                else None
            )
            self.whatsapp = (
                MetaWhatsApp(
                    settings.whatsapp_access_token,
                    settings.whatsapp_phone_number_id or "",  # the agency's; replies use the line's
                    base_url=settings.whatsapp_api_url,
                    http=self.http,
                    allow_private=allow_private,
                )
                if settings.whatsapp_access_token
                else None
            )
        except ValueError as error:  # the adapters' messages name the setting, not its secret
            raise ConfigError(str(error)) from None
        self.twilio_from = settings.twilio_from
        # The demo has no providers: what it would send lands in the outbox (/demo/outbox).
        self.outbox = settings.demo_mode
        self.whatsapp_lines: dict[str, MetaWhatsApp] = {}
        self.secrets = _secrets_of(settings, self.mail)
        # The failures for want of a provider are queued again once per process (its first
        # run), for the channels it has one for: `requeue_unconfigured`.
        self.requeued = False

    def configured(self) -> list[str]:
        """The channels these settings can send on."""
        found = {"email": self.mail is not None, "sms": self.twilio is not None}
        found["whatsapp"] = self.whatsapp is not None or self.twilio is not None
        return [channel for channel in CHANNELS if found.get(channel)]  # push never lacks one

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
                    reply_to=notification.sender or None,  # the business's mailbox
                    attachment=notification.attachment,
                )

            return send_mail
        if channel == "sms" and self.twilio is not None:
            twilio, agency_number = self.twilio, self.twilio_from

            async def send_sms(notification: Notification) -> SendResult:
                sender = notification.sender or agency_number  # a business's line, or ours
                if not sender:
                    raise ProviderError("no number to send from (TWILIO_FROM)", retryable=False)
                return await twilio.send_sms(
                    notification.recipient,
                    sender,
                    notification.body,
                    idempotency_key=notification.idempotency_key,
                )

            return send_sms
        if channel == "whatsapp" and (self.whatsapp is not None or self.twilio is not None):

            async def send_whatsapp(notification: Notification) -> SendResult:
                if on_twilio(notification.sender):
                    return await self._whatsapp_on_twilio(notification)
                if self.whatsapp is None:
                    raise ProviderError("no provider configured for whatsapp", retryable=False)
                whatsapp = self._whatsapp_from(notification.sender)
                if notification.template:
                    name, language, fill = template_parts(notification.template)
                    return await whatsapp.send_template(
                        notification.recipient,
                        name,
                        language or "he",
                        [one_line(notification.body)] if fill == "body" else [],
                        idempotency_key=notification.idempotency_key,
                    )
                if notification.buttons:
                    return await whatsapp.send_buttons(
                        notification.recipient,
                        notification.body,
                        notification.buttons,
                        idempotency_key=notification.idempotency_key,
                    )
                return await whatsapp.send_text(
                    notification.recipient,
                    notification.body,
                    idempotency_key=notification.idempotency_key,
                )

            return send_whatsapp
        if channel == "push" and self.push.db is not None:
            return self.push.send
        if self.outbox:
            return to_outbox
        raise ProviderError(f"{UNCONFIGURED}{channel}", retryable=False)

    async def _whatsapp_on_twilio(self, notification: Notification) -> SendResult:
        """A business's WhatsApp number on Twilio: the Messages API with `whatsapp:` addresses.
        Text only: an approved template goes through Twilio's Content API, which the console
        does not speak (the console and the reminders do not ask for one on such a line), and
        reply buttons are sent as the text they come with."""
        if self.twilio is None:
            raise ProviderError("no provider configured for whatsapp on Twilio", retryable=False)
        if notification.template:
            raise ProviderError(
                "a WhatsApp number on Twilio cannot send a template here", retryable=False
            )
        return await self.twilio.send_whatsapp(
            notification.recipient,
            notification.sender,
            notification.body,
            idempotency_key=notification.idempotency_key,
        )

    def _whatsapp_from(self, phone_number_id: str) -> MetaWhatsApp:
        """The Cloud API client for a business's number (the agency's own when none is given)."""
        assert self.whatsapp is not None
        if not phone_number_id or phone_number_id == self.whatsapp.phone_number_id:
            if not self.whatsapp.phone_number_id:
                raise ProviderError("no WhatsApp number to send from", retryable=False)
            return self.whatsapp
        if phone_number_id not in self.whatsapp_lines:
            self.whatsapp_lines[phone_number_id] = MetaWhatsApp(
                self.whatsapp.access_token,
                phone_number_id,
                base_url=self.whatsapp.base_url,
                http=self.http,
                allow_private=self.whatsapp.allow_private,
            )
        return self.whatsapp_lines[phone_number_id]

    def redact(self, text: str) -> str:
        """The text without any configured secret, short enough for `last_error`."""
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text[:ERROR_LENGTH]

    async def aclose(self) -> None:
        await self.http.aclose()


OUTBOX_PREFIX = "outbox:"
# The start of the error of a send that failed for want of a provider for its channel.
UNCONFIGURED = "no provider configured for "
# How far back such failures are sent again once their channel is configured.
REQUEUE_WITHIN = timedelta(days=7)


async def to_outbox(notification: Notification) -> SendResult:
    """The demo's delivery: the row itself, marked sent with an outbox id, is the message the
    outbox page shows."""
    return SendResult(provider_id=f"{OUTBOX_PREFIX}{notification.id}", status="sent")


def _secrets_of(settings: Settings, mail: SmtpMail | None) -> list[str]:
    found = [settings.twilio_auth_token, settings.whatsapp_access_token]
    if mail is not None and mail.password:
        found += [mail.password, quote(mail.password, safe="")]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


async def send_due_notifications(
    db: Database, senders: Senders, *, now: datetime, limit: int = 50
) -> SendReport:
    """Send what is due, each row by exactly one worker; safe to run on many at once.

    The batch's rows are leased in one writing transaction and the sends' outcomes written
    together as they come in (`_Outcomes`): on SQLite, the one writer is held twice for a
    batch that fails at once (no provider), not twice per row, so a lone web request's write
    does not queue behind fifty of them.
    """
    if senders.push.db is None:  # push reads its subscriptions from the database it sends for
        senders.push.db = db
    if not senders.requeued:  # this process's first run: what its providers can now send
        senders.requeued = True
        await requeue_unconfigured(db, senders.configured(), now=now)
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
    spent = [row.id for row in due if row.attempts >= MAX_ATTEMPTS]
    if spent:
        report.failed += await _give_up(db, spent, now=now)
    leased = await lease(db, [row.id for row in due if row.attempts < MAX_ATTEMPTS], now=now)
    outcomes = _Outcomes(db)
    gate = asyncio.Semaphore(CONCURRENT_SENDS)

    async def send_one(notification: Notification) -> None:
        async with gate:
            outcome, write = await _deliver(senders, notification, now=now)
        await outcomes.record(write)
        report.count(outcome)

    await asyncio.gather(*(send_one(notification) for notification in leased))
    return report


async def lease(
    db: Database, notification_ids: list[uuid.UUID], *, now: datetime
) -> list[Notification]:
    """Take the rows for one send attempt each, in one transaction; those another worker has
    or that are no longer due are left out."""
    if not notification_ids:
        return []
    async with db.transaction() as session:
        taken = (
            await session.scalars(
                update(Notification)
                .where(
                    Notification.id.in_(notification_ids),
                    Notification.status == "queued",
                    Notification.next_attempt_at <= now,
                    Notification.attempts < MAX_ATTEMPTS,
                )
                .values(next_attempt_at=now + LEASE, attempts=Notification.attempts + 1)
                .returning(Notification.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
        if not taken:
            return []
        rows = await session.scalars(select(Notification).where(Notification.id.in_(taken)))
        return sorted(rows, key=lambda row: notification_ids.index(row.id))


async def requeue_unconfigured(db: Database, channels: list[str], *, now: datetime) -> int:
    """Queue again, for a send now, what failed in the last week for want of a provider on a
    channel that has one now (the agency configured it since); how many."""
    if not channels:
        return 0
    async with db.transaction() as session:
        result = await session.execute(
            update(Notification)
            .where(
                Notification.status == "failed",
                Notification.created_at >= now - REQUEUE_WITHIN,
                Notification.channel.in_(channels),
                Notification.last_error.startswith(UNCONFIGURED, autoescape=True),
            )
            .values(status="queued", attempts=0, next_attempt_at=now, last_error="")
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def retry_failed(session: AsyncSession, notification_id: uuid.UUID, *, now: datetime) -> None:
    """An admin's "retry" of a failed send: queued again with its attempts anew, sent soon
    under its own key (the provider sees the same one); 404 when it is no failed send."""
    result = await session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "failed")
        .values(status="queued", attempts=0, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound("Not found.")
    after_commit(session, RunSoon("send_notifications"))


def backoff(attempts: int) -> timedelta:
    """The wait after the given number of failed attempts: 1, 2, 4, 8 … minutes, at most 60."""
    doublings = min(max(0, attempts - 1), 16)  # the cap is reached long before
    return min(FIRST_BACKOFF * (1 << doublings), MAX_BACKOFF)


Write = Callable[[AsyncSession], Awaitable[None]]


class _Outcomes:
    """The sends' outcomes, written in as few transactions as they allow: one that finishes
    while another's is being written waits and goes into the next with whatever else came in
    meanwhile. Each send's outcome is written before its `record` returns."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.pending: list[tuple[Write, asyncio.Future[None]]] = []
        self.turn = asyncio.Lock()

    async def record(self, write: Write) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((write, done))
        async with self.turn:
            if not done.done():
                batch, self.pending = self.pending, []
                try:
                    async with self.db.transaction() as session:
                        for each, _done in batch:
                            await each(session)
                except Exception as error:
                    for _write, waiting in batch:
                        waiting.set_exception(error)
                else:
                    for _write, waiting in batch:
                        waiting.set_result(None)
        await done


async def _deliver(
    senders: Senders, notification: Notification, *, now: datetime
) -> tuple[Outcome, Write]:
    """Send outside any transaction; the outcome, and what records it."""
    try:
        result = await senders.for_channel(notification.channel)(notification)
    except ProviderError as error:
        failure = error
    except Exception as error:  # a bug or a refused URL must not stop the other sends
        log.exception("sending notification %s broke", notification.id)
        failure = ProviderError(f"{type(error).__name__}: {error}", retryable=True)
    else:
        log.info("notification %s sent as %s", notification.id, result.provider_id)

        async def sent(session: AsyncSession) -> None:
            # A success counts even if this worker's lease ran out meanwhile.
            values: dict[str, Any] = {
                "status": "sent",
                "sent_at": now,
                "provider_id": result.provider_id,
            }
            await _record(session, notification, **values)
            await _record_reply(session, notification, provider_id=result.provider_id, now=now)

        return "sent", sent
    error_text = senders.redact(_describe(failure))
    if failure.retryable and notification.attempts < MAX_ATTEMPTS:
        retry_at = now + backoff(notification.attempts)
        log.warning(
            "notification %s failed, retrying at %s: %s", notification.id, retry_at, error_text
        )

        async def retried(session: AsyncSession) -> None:
            values: dict[str, Any] = {"next_attempt_at": retry_at, "last_error": error_text}
            await _record(session, notification, lease_held=True, **values)

        return "retried", retried
    log.warning("notification %s failed for good: %s", notification.id, error_text)

    async def failed(session: AsyncSession) -> None:
        values: dict[str, Any] = {"status": "failed", "last_error": error_text}
        await _record(session, notification, lease_held=True, **values)
        await _record_reply(session, notification, error=error_text, now=now)

    return "failed", failed


async def _record_reply(
    session: AsyncSession,
    notification: Notification,
    *,
    provider_id: str = "",
    error: str = "",
    now: datetime,
) -> None:
    """A reply to a contact shows its send beside it on the lead."""
    if notification.interaction_id is None:
        return
    await record_send(
        session, notification.interaction_id, provider_id=provider_id, error=error, now=now
    )


def _describe(error: ProviderError) -> str:
    """The provider's message, after its HTTP status and error code when it gave them."""
    known = [f"HTTP {error.http_status}"] if error.http_status is not None else []
    known += [f"code {error.code}"] if error.code is not None else []
    return f"{', '.join(known)}: {error.message}" if known else error.message


async def _record(
    session: AsyncSession, notification: Notification, *, lease_held: bool = False, **values: Any
) -> None:
    """Write a send's outcome to a row still queued; with `lease_held`, only if no later lease
    took the row meanwhile (its attempts still those of this send)."""
    conditions = [Notification.id == notification.id, Notification.status == "queued"]
    if lease_held:
        conditions.append(Notification.attempts == notification.attempts)
    await session.execute(
        update(Notification)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def _give_up(db: Database, notification_ids: list[uuid.UUID], *, now: datetime) -> int:
    """Fail the rows whose every attempt was used, the last by a worker that never reported
    back; how many it failed."""
    async with db.transaction() as session:
        result = await session.execute(
            update(Notification)
            .where(
                Notification.id.in_(notification_ids),
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
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def template_parts(template: str) -> tuple[str, str, str]:
    """An approved WhatsApp template as configured and queued, "name:language[:body]": its
    name, its language ("" when unsaid) and what fills its one variable ("body": the
    notification's text; "": it has none)."""
    name, _, rest = template.partition(":")
    language, _, fill = rest.partition(":")
    return name, language, fill


def one_line(text: str) -> str:
    """Text as a WhatsApp template's variable takes it: no new lines or tabs, no runs of spaces,
    at most 1,024 characters (Meta refuses the message otherwise)."""
    return " ".join(text.split())[:1024]
