"""Web Push, end to end against a local push service that speaks the real protocol
(tests/push_service.py): an owner's browsers subscribe over HTTP with keys the test made (bad
subscriptions are refused with 422 and store nothing); a hand-off reaches each browser through
the notification sender, VAPID-signed and aes128gcm-encrypted, and the test reads the
plaintext; a browser the push service no longer knows (410) is removed; a 503 is retried; the
kinds he turned off are not pushed; signing out ends that sign-in's subscriptions; a breach
reaches his browser as a high-urgency message."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels import push
from console.channels.notify import Senders, send_due_notifications
from console.channels.push import check_subscription, installation_keys, subscribe
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.sla import sla
from console.tasks import tasks
from models import Notification, PushKeys, PushSubscription, SlaPolicy, User
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.push_service import PushService, b64url

NOW = datetime.now(UTC).replace(microsecond=0)
KEY_ON_PAGE = re.compile(r'id="push-on"[^>]*data-key="([^"]+)"')


@pytest.fixture
async def push_service() -> AsyncIterator[PushService]:
    async with PushService() as service:
        yield service


@pytest.fixture
async def push_app(db: Database, push_service: PushService) -> AsyncIterator[Any]:
    settings = Settings(
        database_url=db.url, secret_key=SECRET, push_test_origin=push_service.base_url
    )
    application = create_app(settings, db=db, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def count(db: Database, model: Any) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def pushes(db: Database) -> list[Notification]:
    async with db.transaction(write=False) as session:
        found = await session.scalars(
            select(Notification)
            .where(Notification.channel == "push")
            .order_by(Notification.created_at, Notification.id)
        )
        return list(found)


def bad_subscriptions(good: dict[str, Any], service_url: str) -> list[tuple[Any, str]]:
    """(what a client posts, the field the refusal names)."""
    keys = good["keys"]
    not_on_curve = b64url(b"\x04" + b"\x01" * 64)
    return [
        ([good], "endpoint"),
        ({**good, "endpoint": "http://push.example.com/x"}, "endpoint"),
        ({**good, "endpoint": "ftp://push.example.com/x"}, "endpoint"),
        ({**good, "endpoint": "https:///no-host"}, "endpoint"),
        ({**good, "endpoint": "https://user:pw@push.example.com/x"}, "endpoint"),
        ({**good, "endpoint": "https://push.example.com/" + "x" * 1000}, "endpoint"),
        (
            {**good, "endpoint": service_url.replace("127.0.0.1", "localhost") + "/push/x"},
            "endpoint",
        ),
        ({**good, "endpoint": 7}, "endpoint"),
        ({**good, "endpoint": "https://127.0.0.1/push/x"}, "endpoint"),
        ({**good, "endpoint": "https://[::1]:8443/push/x"}, "endpoint"),
        ({**good, "endpoint": "https://10.1.2.3/push/x"}, "endpoint"),
        ({**good, "endpoint": "https://push.localhost/x"}, "endpoint"),
        ({"endpoint": good["endpoint"]}, "p256dh"),
        ({**good, "keys": {**keys, "p256dh": keys["p256dh"][:-2]}}, "p256dh"),
        ({**good, "keys": {**keys, "p256dh": not_on_curve}}, "p256dh"),
        ({**good, "keys": {**keys, "p256dh": keys["p256dh"][:-1] + "!"}}, "p256dh"),
        ({**good, "keys": {**keys, "auth": b64url(b"x" * 15)}}, "auth"),
        ({**good, "keys": {**keys, "auth": b64url(b"x" * 17)}}, "auth"),
        ({**good, "keys": {**keys, "auth": None}}, "auth"),
    ]


async def send_now(db: Database, senders: Senders, now: datetime) -> tuple[int, int, int]:
    report = await send_due_notifications(db, senders, now=now)
    return report.sent, report.retried, report.failed


async def test_an_owner_s_browsers_get_his_hand_offs_by_web_push(
    push_app: Any, db: Database, push_service: PushService
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, always_open=True)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business, name="אבי")
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(business.id), phone="054-2345678", name="יעל", subject="נזילה"),
            now=NOW,
        )
        stored_key = (await session.get(PushKeys, 1)).public_key  # type: ignore[union-attr]
    phone = client_of(push_app)
    await sign_in(phone, owner.email)
    page = await phone.get("/portal/notifications")
    assert page.status_code == 200
    match = KEY_ON_PAGE.search(page.text)
    assert match and match.group(1) == stored_key  # made at the first start, kept, shown
    assert len(base64.urlsafe_b64decode(stored_key + "=")) == 65
    csrf = await csrf_token(phone, "/portal/notifications")
    headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}

    # strict validation: each bad subscription is 422 naming its field, and nothing is stored
    good = push_service.new_browser(stored_key)
    for payload, field in bad_subscriptions(good.subscription(), push_service.base_url):
        answer = await phone.post("/portal/push/subscriptions", json=payload, headers=headers)
        assert (answer.status_code, answer.json().get("field")) == (422, field), payload
    answer = await phone.post(
        "/portal/push/subscriptions",
        content=b"{not json",
        headers=headers | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert await count(db, PushSubscription) == 0
    # a secretary has no portal to install: 404, as for a page that is not his
    desk = client_of(push_app)
    await sign_in(desk, secretary.email)
    desk_csrf = await csrf_token(desk, "/inbox")
    answer = await desk.post(
        "/portal/push/subscriptions",
        json=good.subscription(),
        headers={"X-CSRF-Token": desk_csrf, "Accept": "application/json"},
    )
    assert answer.status_code == 404 and await count(db, PushSubscription) == 0

    # two browsers of his subscribe (one twice: still one subscription)
    gone = push_service.new_browser(stored_key)
    for browser in (good, gone, good):
        answer = await phone.post(
            "/portal/push/subscriptions", json=browser.subscription(), headers=headers
        )
        assert answer.status_code == 201
    assert await count(db, PushSubscription) == 2

    # a hand-off: his channel (e-mail) and a push to each browser, through the one sender
    async with db.transaction() as session:
        handoff = tasks.HandOff(
            assignee_id=str(owner.id), title="להתקשר ליעל", due="2031-01-05T12:00"
        )
        task = await tasks.hand_off(session, secretary, lead.id, handoff, now=NOW)
    assert len(await pushes(db)) == 2
    push_service.answer_next(gone, 410)
    senders = Senders(
        Settings(database_url=db.url, secret_key=SECRET, push_test_origin=push_service.base_url)
    )
    try:
        # the e-mail has no provider here and fails as before; of the pushes, one went
        assert await send_now(db, senders, NOW) == (1, 0, 2)
        [delivery] = push_service.delivered
        assert delivery.token == good.token and push_service.refused == []
        assert delivery.message["title"].endswith("להתקשר ליעל")
        assert delivery.message["body"].startswith("שלום אבי")
        assert delivery.message["url"] == "/portal"
        assert delivery.message["tag"] == f"task:{task.id}:handed"
        assert (delivery.ttl, delivery.urgency) == (24 * 3600, "normal")
        assert delivery.claims["aud"] == push_service.base_url
        by_recipient = {row.recipient: row for row in await pushes(db)}
        async with db.transaction(write=False) as session:
            kept = {str(s.id): s.endpoint for s in await session.scalars(select(PushSubscription))}
        # the browser the push service no longer knows is removed, its row failed for good
        assert list(kept.values()) == [good.endpoint]
        statuses = sorted((row.status, row.last_error[:8]) for row in by_recipient.values())
        assert statuses == [("failed", "HTTP 410"), ("sent", "")]

        # an urgent hand-off meets a busy push service (503): retried, then delivered as high
        push_service.answer_next(good, 503)
        async with db.transaction() as session:
            urgent = tasks.HandOff(
                assignee_id=str(owner.id),
                title="דחוף: הצפה",
                due="2031-01-05T12:00",
                priority="urgent",
            )
            await tasks.hand_off(session, secretary, lead.id, urgent, now=NOW)
        await send_now(db, senders, NOW)
        [retry] = [row for row in await pushes(db) if row.status == "queued"]
        assert (retry.attempts, retry.last_error[:8]) == (1, "HTTP 503")
        await send_now(db, senders, NOW + timedelta(minutes=2))
        assert push_service.delivered[-1].urgency == "high"
        assert push_service.delivered[-1].message["title"].endswith("דחוף: הצפה")
        assert len(push_service.delivered) == 2

        # he turns hand-offs off: the next one goes on his channel only
        answer = await phone.post(
            "/portal/notifications", data={"csrf_token": csrf, "kinds": ["urgent", "breach"]}
        )
        assert answer.status_code == 303
        async with db.transaction() as session:
            assert (await session.get(User, owner.id)).push_kinds == ["urgent", "breach"]  # type: ignore[union-attr]
            again = tasks.HandOff(assignee_id=str(owner.id), title="עוד", due="2031-01-05T12:00")
            await tasks.hand_off(session, secretary, lead.id, again, now=NOW)
        assert len(await pushes(db)) == 3  # none new

        # "send a test notification": to each of his browsers, whatever he chose, in Hebrew
        answer = await phone.post(
            "/portal/notifications/test",
            data={"csrf_token": csrf},
            headers={"HX-Request": "true"},
        )
        assert answer.status_code == 200 and "נשלחה למכשיר אחד" in answer.text
        # the button queues on the app's own clock, the real one: NOW was read when this module
        # was imported, which a worker of the suite may have done many minutes earlier
        await send_now(db, senders, max(NOW, datetime.now(UTC)) + timedelta(minutes=3))
        # the same run may also deliver the 503's retry, in either order
        [test] = [d for d in push_service.delivered if d.message["title"] == "מזכירה: התראת ניסיון"]
        assert test.token == good.token
        assert test.message["url"] == "/portal/notifications"
    finally:
        await senders.aclose()

    # signing out ends what this sign-in subscribed: the phone is not his any more
    await phone.post("/logout", data={"csrf_token": csrf})
    assert await count(db, PushSubscription) == 0
    await phone.aclose()
    await desk.aclose()


async def test_a_breach_reaches_the_owner_s_browser_as_high_urgency(
    db: Database, push_service: PushService
) -> None:
    """The SLA sweep's breach notice (he asked for it) goes to his browser too, opening the lead."""
    async with db.transaction() as session:
        business = await make_business(session, always_open=True, name="אינסטלציה כהן")
        owner = await make_user(session, "owner", business, locale="he")
        session.add(
            SlaPolicy(
                business_id=business.id,
                channel="",
                priority="",
                first_response_minutes=5,
                warn_at_percent=[50],
                notify_owner_on_breach=True,
            )
        )
        public_key = (await installation_keys(session)).public_key
        browser = push_service.new_browser(public_key)
        await subscribe(
            session,
            owner,
            check_subscription(browser.subscription(), test_origin=push_service.base_url),
            session_id=None,
            now=NOW,
        )
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-7654321", channel="phone"),
            now=NOW,
            business=business,
        )
    for _ in range(2):  # once, however often the sweep runs
        async with db.transaction() as session:
            await sla.sweep(session, now=NOW + timedelta(minutes=6))
    assert len(await pushes(db)) == 1
    settings = Settings(
        database_url=db.url, secret_key=SECRET, push_test_origin=push_service.base_url
    )
    senders = Senders(settings)
    try:
        await send_now(db, senders, NOW + timedelta(minutes=6))
    finally:
        await senders.aclose()
    [delivery] = push_service.delivered
    assert delivery.urgency == "high"
    assert delivery.message["title"].startswith("פנייה חיכתה יותר מדי")
    assert "אינסטלציה כהן" in delivery.message["body"]
    assert delivery.message["url"] == f"/portal/leads/{lead.id}"


def test_a_long_message_fits_a_push_service_s_4096_bytes() -> None:
    """A call's message in Hebrew (two bytes a letter) is cut to what a notification shows."""
    body = push.shortened("נזילה במטבח, " * 400, push.BODY_CHARACTERS)
    title = push.shortened("שיחה מיעל כהן " * 20, push.TITLE_CHARACTERS)
    assert body.endswith("…") and len(body) == push.BODY_CHARACTERS
    payload = json.dumps(
        {"title": title, "body": body, "url": "/portal/leads/" + "x" * 36}, ensure_ascii=False
    )
    # the record's overhead (RFC 8188: 86 bytes of header, 17 of padding and tag) included
    assert len(payload.encode()) + 86 + 17 <= 4096
    assert push.shortened("קצר", push.BODY_CHARACTERS) == "קצר"
