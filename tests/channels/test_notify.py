"""Notifications: queued once, sent once through the local fake providers, retried with backoff,
and never sent twice by two workers or after a worker died mid-send."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import event, select, update

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid
from console.base.scheduler import RunSoon
from console.channels.mail import SmtpMail
from console.channels.notify import (
    LEASE,
    MAX_ATTEMPTS,
    NotificationQueued,
    Senders,
    SendReport,
    lease,
    queue_notification,
    send_due_notifications,
)
from models import Notification
from tests.conftest import SECRET
from tests.factories import make_business
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio
from workers.notifications import send_notifications
from workers.settings import PERIODIC, worker_settings

NOW = datetime(2025, 3, 2, 9, 0, tzinfo=UTC)
PHONE = "054-2345678"
E164 = "+972542345678"
AGENCY_NUMBER = "+97235551234"


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp(username="agency", password="p@ss/word") as fake:
        yield fake


def provider_settings(
    db: Database,
    *,
    twilio: FakeTwilio | None = None,
    meta: FakeMeta | None = None,
    smtp: FakeSmtp | None = None,
    **overrides: Any,
) -> Settings:
    fields: dict[str, Any] = {"allow_private_provider_urls": True}
    if twilio is not None:
        fields |= {
            "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": twilio.auth_token,
            "twilio_from": AGENCY_NUMBER,
            "twilio_api_url": twilio.base_url,
        }
    if meta is not None:
        fields |= {
            "whatsapp_access_token": meta.access_token,
            "whatsapp_phone_number_id": meta.phone_number_id,
            "whatsapp_api_url": meta.base_url,
        }
    if smtp is not None:
        fields["smtp_url"] = smtp.url()
    return Settings(database_url=db.url, secret_key=SECRET, **(fields | overrides))


@pytest.fixture
async def business_id(db: Database) -> uuid.UUID:
    async with db.transaction() as session:
        return (await make_business(session)).id


async def queue(
    db: Database,
    business_id: uuid.UUID,
    *,
    key: str = "alert:1:sms",
    channel: str = "sms",
    recipient: str = PHONE,
    subject: str = "",
    body: str = "ליד חדש מחכה לתשובה",
    now: datetime = NOW,
) -> bool:
    async with db.transaction() as session:
        return await queue_notification(
            session,
            key=key,
            business_id=business_id,
            channel=channel,
            recipient=recipient,
            subject=subject,
            body=body,
            now=now,
        )


async def notifications(db: Database) -> list[Notification]:
    async with db.transaction(write=False) as session:
        return list(await session.scalars(select(Notification).order_by(Notification.created_at)))


async def only_notification(db: Database) -> Notification:
    [notification] = await notifications(db)
    return notification


async def send(db: Database, settings: Settings, *, now: datetime = NOW) -> SendReport:
    senders = Senders(settings)
    try:
        return await send_due_notifications(db, senders, now=now)
    finally:
        await senders.aclose()


async def test_the_same_key_queues_one_notification(db: Database, business_id: uuid.UUID) -> None:
    woken: list[Any] = []
    db.after_commit.append(woken.extend)
    assert await queue(db, business_id) is True
    assert await queue(db, business_id, body="a second attempt at the same alert") is False
    notification = await only_notification(db)
    assert (notification.recipient, notification.status, notification.attempts) == (
        E164,
        "queued",
        0,
    )
    # the sender is woken once, for the row that was inserted
    assert woken == [NotificationQueued(notification.id), RunSoon("send_notifications")]


@pytest.mark.parametrize(
    ("channel", "recipient"),
    [("fax", PHONE), ("email", "not-an-address"), ("email", " "), ("sms", "050-1234567")],
)
async def test_bad_channel_or_recipient_is_refused_and_writes_nothing(
    db: Database, business_id: uuid.UUID, channel: str, recipient: str
) -> None:
    with pytest.raises(Invalid):
        await queue(db, business_id, channel=channel, recipient=recipient)
    assert await notifications(db) == []


async def test_email_goes_through_smtp_with_its_hebrew_subject(
    db: Database, business_id: uuid.UUID, smtp: FakeSmtp
) -> None:
    subject = "התראה: ליד ממתין 12 דקות"
    await queue(
        db,
        business_id,
        key="alert:1:email",
        channel="email",
        recipient="Owner@Example.com",
        subject=subject,
        body="שלום, ליד חדש מחכה.",
    )
    report = await send(db, provider_settings(db, smtp=smtp))
    assert report == SendReport(sent=1)
    [mail] = smtp.received
    assert mail.envelope_to == ["owner@example.com"]
    assert mail.subject == subject
    assert mail.text.strip() == "שלום, ליד חדש מחכה."
    message_id = SmtpMail(smtp.url()).message_id("alert:1:email")
    assert mail.header("Message-ID") == message_id
    notification = await only_notification(db)
    assert (notification.status, notification.sent_at, notification.provider_id) == (
        "sent",
        NOW,
        message_id,
    )


async def test_sms_goes_through_twilio(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    await queue(db, business_id)
    assert await send(db, provider_settings(db, twilio=twilio)) == SendReport(sent=1)
    [message] = twilio.messages
    assert (message["to"], message["from"], message["body"]) == (
        E164,
        AGENCY_NUMBER,
        "ליד חדש מחכה לתשובה",
    )
    assert twilio.requests[0].headers["i-twilio-idempotency-token"] == "alert:1:sms"
    notification = await only_notification(db)
    assert (notification.status, notification.provider_id) == ("sent", message["sid"])


async def test_whatsapp_goes_through_meta(
    db: Database, business_id: uuid.UUID, meta: FakeMeta
) -> None:
    await queue(db, business_id, key="alert:1:whatsapp", channel="whatsapp")
    assert await send(db, provider_settings(db, meta=meta)) == SendReport(sent=1)
    [message] = meta.messages
    assert (message["to"], message["text"]["body"]) == ("972542345678", "ליד חדש מחכה לתשובה")
    assert (await only_notification(db)).status == "sent"


async def test_a_server_error_is_retried_a_minute_later(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    settings = provider_settings(db, twilio=twilio)
    await queue(db, business_id)
    twilio.fail_next(1, 500)
    assert await send(db, settings) == SendReport(retried=1)
    notification = await only_notification(db)
    assert (notification.status, notification.attempts) == ("queued", 1)
    assert notification.next_attempt_at == NOW + timedelta(minutes=1)
    assert notification.last_error == "HTTP 500, code 20500: Internal Server Error"

    assert await send(db, settings, now=NOW + timedelta(seconds=50)) == SendReport()
    assert await send(db, settings, now=NOW + timedelta(minutes=1)) == SendReport(sent=1)
    assert len(twilio.messages) == 1
    assert (await only_notification(db)).status == "sent"


async def test_a_client_error_fails_at_once(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    settings = provider_settings(db, twilio=twilio)
    await queue(db, business_id)
    twilio.fail_next(1, 400)
    assert await send(db, settings) == SendReport(failed=1)
    assert await send(db, settings, now=NOW + timedelta(days=1)) == SendReport()
    notification = await only_notification(db)
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert "is not a valid phone number" in notification.last_error
    assert len(twilio.requests) == 1


async def test_backoff_doubles_until_the_last_attempt_fails(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    settings = provider_settings(db, twilio=twilio)
    await queue(db, business_id)
    twilio.fail_next(MAX_ATTEMPTS, 503)
    clock, waits = NOW, []
    for _ in range(MAX_ATTEMPTS - 1):
        assert await send(db, settings, now=clock) == SendReport(retried=1)
        next_attempt_at = (await only_notification(db)).next_attempt_at
        waits.append((next_attempt_at - clock) // timedelta(minutes=1))
        clock = next_attempt_at
    assert waits == [1, 2, 4, 8, 16]
    assert await send(db, settings, now=clock) == SendReport(failed=1)
    notification = await only_notification(db)
    assert (notification.status, notification.attempts) == ("failed", MAX_ATTEMPTS)
    assert "503" in notification.last_error
    assert len(twilio.requests) == MAX_ATTEMPTS and twilio.messages == []


async def test_two_runs_at_once_send_each_notification_once(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    for n in range(12):
        await queue(db, business_id, key=f"alert:{n}:sms")
    settings = provider_settings(db, twilio=twilio)
    first, second = await asyncio.gather(send(db, settings), send(db, settings))
    assert first.sent + second.sent == 12 and first.retried + second.retried == 0
    assert len(twilio.requests) == 12
    tokens = {r.headers["i-twilio-idempotency-token"] for r in twilio.requests}
    assert tokens == {f"alert:{n}:sms" for n in range(12)}
    assert {n.status for n in await notifications(db)} == {"sent"}


async def test_a_worker_killed_mid_send_is_replaced_after_its_lease(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio, smtp: FakeSmtp
) -> None:
    settings = provider_settings(db, twilio=twilio, smtp=smtp)
    await queue(db, business_id)
    await queue(db, business_id, key="alert:1:email", channel="email", recipient="o@example.com")
    senders = Senders(settings)
    for notification in await notifications(db):
        [leased] = await lease(db, [notification.id], now=NOW)
        await senders.for_channel(leased.channel)(leased)  # delivered, then the worker died
    await senders.aclose()

    assert await send(db, settings, now=NOW + LEASE - timedelta(seconds=1)) == SendReport()
    assert await send(db, settings, now=NOW + LEASE) == SendReport(sent=2)
    assert await send(db, settings, now=NOW + 2 * LEASE) == SendReport()
    tokens = [r.headers["i-twilio-idempotency-token"] for r in twilio.requests]
    assert tokens == ["alert:1:sms", "alert:1:sms"] and len(twilio.messages) == 1
    message_ids = {mail.header("Message-ID") for mail in smtp.received}
    assert len(smtp.received) == 2 and message_ids == {
        SmtpMail(smtp.url()).message_id("alert:1:email")
    }
    assert [(n.status, n.attempts) for n in await notifications(db)] == [("sent", 2)] * 2


async def test_a_row_whose_last_attempt_never_reported_back_is_given_up(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    await queue(db, business_id)
    async with db.transaction() as session:
        await session.execute(update(Notification).values(attempts=MAX_ATTEMPTS))
    assert await send(db, provider_settings(db, twilio=twilio)) == SendReport(failed=1)
    assert "gave up after 6 attempts" in (await only_notification(db)).last_error
    assert twilio.requests == []


async def test_missing_provider_settings_fail_with_a_clear_error(
    db: Database, business_id: uuid.UUID
) -> None:
    await queue(db, business_id)
    await queue(db, business_id, key="alert:1:email", channel="email", recipient="o@example.com")
    await queue(db, business_id, key="alert:1:whatsapp", channel="whatsapp")
    assert await send(db, provider_settings(db)) == SendReport(failed=3)
    errors = {n.channel: (n.status, n.last_error) for n in await notifications(db)}
    assert errors == {
        channel: ("failed", f"no provider configured for {channel}")
        for channel in ("sms", "email", "whatsapp")
    }


async def test_a_batch_takes_the_writer_a_few_times_not_twice_a_row(
    db: Database, business_id: uuid.UUID
) -> None:
    """Twenty sends failing at once (no provider): leased in one writing transaction, their
    outcomes written together as they finish, so a lone request's write on SQLite queues
    behind a few transactions, not forty (issue 23: a hand-off waited 2 s behind a reply's)."""
    for n in range(20):
        await queue(db, business_id, key=f"alert:{n}:sms")
    commits: list[object] = []
    count = commits.append
    event.listen(db.engine.sync_engine, "commit", count)
    try:
        assert await send(db, provider_settings(db)) == SendReport(failed=20)
    finally:
        event.remove(db.engine.sync_engine, "commit", count)
    # The read of what is due, the leases, and the outcomes (the first alone, then the rest
    # that finished while it was written); one lease and one outcome a row made 41.
    assert len(commits) <= 5, len(commits)
    assert {(n.status, n.attempts) for n in await notifications(db)} == {("failed", 1)}


async def test_secrets_never_reach_last_error(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    await queue(db, business_id)
    twilio.fail_next(1, 401, message=f"Authenticate with {twilio.auth_token} failed")
    assert await send(db, provider_settings(db, twilio=twilio)) == SendReport(failed=1)
    last_error = (await only_notification(db)).last_error
    assert twilio.auth_token not in last_error and "[redacted]" in last_error


async def test_the_arq_worker_runs_the_sender_from_redis(
    db: Database, business_id: uuid.UUID, redis: Redis, redis_url: str, twilio: FakeTwilio
) -> None:
    settings = provider_settings(db, twilio=twilio, redis_url=redis_url)
    await queue(db, business_id, now=datetime.now(UTC) - timedelta(seconds=1))
    config = worker_settings(settings)
    [cron_job] = [job for job in config["cron_jobs"] if job.name == "cron:send_notifications"]
    assert cron_job.second == set(range(0, 60, 10)) and cron_job.minute is None
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await pool.enqueue_job("send_notifications", _job_id="send-test")

    async def startup(ctx: dict[str, Any]) -> None:  # as workers.settings.startup, with our db
        ctx["db"], ctx["settings"], ctx["senders"] = db, settings, Senders(settings)

    async def shutdown(ctx: dict[str, Any]) -> None:
        await ctx["senders"].aclose()

    worker = Worker(
        functions=config["functions"],
        redis_pool=pool,
        burst=True,
        poll_delay=0,
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=False,
    )
    await worker.main()
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    assert len(twilio.messages) == 1 and (await only_notification(db)).status == "sent"
    await worker.close()
    await pool.aclose()


async def test_the_job_keeps_its_senders_between_runs(
    db: Database, business_id: uuid.UUID, twilio: FakeTwilio
) -> None:
    assert any(job.function is send_notifications for job in PERIODIC)
    ctx: dict[str, Any] = {"db": db, "settings": provider_settings(db, twilio=twilio)}
    await queue(db, business_id, now=datetime.now(UTC) - timedelta(seconds=1))
    assert await send_notifications(ctx) == SendReport(sent=1)
    senders = ctx["senders"]
    assert await send_notifications(ctx) == SendReport()  # a second run sends nothing more
    assert ctx["senders"] is senders and len(twilio.messages) == 1
    await senders.aclose()


def test_provider_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://db/mazkira",
            "SECRET_KEY": SECRET,
            "SMTP_URL": "smtps://agency:pw@mail.example.com?from=agency@example.com",
            "TWILIO_ACCOUNT_SID": "AC123",
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_FROM": AGENCY_NUMBER,
            "WHATSAPP_ACCESS_TOKEN": "meta-token",
            "WHATSAPP_PHONE_NUMBER_ID": "1065",
            "WHATSAPP_REPLY_TEMPLATE": "follow_up:he",
            "WHATSAPP_MESSAGE_TEMPLATE": "mazkira_message:he",
            "ALLOW_PRIVATE_PROVIDER_URLS": "true",
        }
    )
    assert settings.smtp_url == "smtps://agency:pw@mail.example.com?from=agency@example.com"
    assert (settings.twilio_account_sid, settings.twilio_auth_token) == ("AC123", "token")
    assert settings.twilio_from == AGENCY_NUMBER
    assert settings.twilio_api_url == "https://api.twilio.com"
    assert (settings.whatsapp_access_token, settings.whatsapp_phone_number_id) == (
        "meta-token",
        "1065",
    )
    assert settings.whatsapp_api_url == "https://graph.facebook.com"
    assert settings.allow_private_provider_urls is True
    assert settings.whatsapp_reply_template == "follow_up:he"  # a secretary's reply
    assert settings.contact_whatsapp_template == "mazkira_message:he:body"  # a notice, carried
    bare = Settings.from_env({"DATABASE_URL": "postgresql://db/mazkira", "SECRET_KEY": SECRET})
    assert bare.contact_whatsapp_template is None
    assert (bare.smtp_url, bare.twilio_auth_token, bare.allow_private_provider_urls) == (
        None,
        None,
        False,
    )
