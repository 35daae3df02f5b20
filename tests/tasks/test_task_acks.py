"""An owner answers a hand-off without signing in: the signed link in his message (a page that
asks, a POST that applies, on an injected clock) and WhatsApp reply buttons whose ids are signed
tokens too. Forged, expired and foreign tokens change nothing."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.notify import Senders, SendReport, send_due_notifications
from console.channels.providers import MetaWhatsApp, ProviderError
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.tasks import tasks
from console.tasks.task_acks import apply_button_reply
from console.tasks.task_links import BUTTON, LINK, TaskLinks
from models import Lead, Notification, Task, User
from tests.conftest import SECRET
from tests.factories import MovableClock, make_business, make_user
from tests.fakes import FakeMeta, meta_text_message_payload, signed_meta_body

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
PUBLIC = "https://console.example.test"
LINKS = TaskLinks(SECRET, PUBLIC)
LINK_IN_BODY = re.compile(re.escape(PUBLIC) + r"(/ack/\S+)")


@dataclass
class Story:
    owner: User
    task: Task
    seen: str  # the paths of the links in the owner's message
    done: str


async def handed_off(db: Database, *, locale: str = "he", **owner_fields: Any) -> Story:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business, locale=locale)
        for name, value in owner_fields.items():
            setattr(owner, name, value)
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-7654321", name="דנה"),
            now=SUNDAY_9,
            business=business,
        )
        task = await tasks.hand_off(
            session,
            secretary,
            lead.id,
            tasks.HandOff(
                assignee_id=str(owner.id), title="להחזיר טלפון לדנה", due="2026-11-23T12:00"
            ),
            now=SUNDAY_9,
            links=LINKS,
        )
        notice = await session.scalar(
            select(Notification).where(Notification.idempotency_key == f"task:{task.id}:handed")
        )
    assert notice is not None
    paths = LINK_IN_BODY.findall(notice.body)
    seen, done = paths if len(paths) == 2 else ("", "")
    return Story(owner, task, seen, done)


async def current(db: Database, task: Task) -> Task:
    async with db.transaction(write=False) as session:
        return await session.get_one(Task, task.id, populate_existing=True)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_9 + timedelta(minutes=10))


@pytest.fixture
async def guest(db: Database, clock: MovableClock) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with no session at all, against an app on a clock the test moves."""
    settings = Settings(database_url=db.url, secret_key=SECRET, public_url=PUBLIC)
    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_the_owner_marks_a_task_seen_then_done_from_his_links(
    db: Database, guest: httpx.AsyncClient, clock: MovableClock
) -> None:
    story = await handed_off(db)
    assert story.seen and story.done

    page = await guest.get(story.seen)
    assert page.status_code == 200
    assert 'dir="rtl"' in page.text and "להחזיר טלפון לדנה" in page.text
    assert "לסמן שראיתי" in page.text  # the button that posts
    assert page.headers["referrer-policy"] == "no-referrer"
    assert (await current(db, story.task)).acknowledged_at is None  # GET changes nothing

    posted = await guest.post(story.seen)  # no session, no CSRF token: the token is the proof
    assert (posted.status_code, posted.headers["location"]) == (303, story.seen)
    seen = await current(db, story.task)
    assert (seen.acknowledged_at, seen.acknowledged_by_id, seen.acknowledged_via) == (
        clock.moment,
        story.owner.id,
        "link",
    )
    assert seen.acknowledge_covered_minutes == 10.0  # measured against the policy's 120
    again = await guest.get(story.seen)
    assert "סומן כנראה" in again.text and "בזמן שהובטח" in again.text

    clock.moment += timedelta(minutes=5)
    assert (await guest.post(story.seen)).status_code == 303  # a second tap changes nothing
    assert (await current(db, story.task)).acknowledged_at == seen.acknowledged_at

    assert (await guest.post(story.done)).status_code == 303
    done = await current(db, story.task)
    assert (done.status, done.completed_at, done.next_alert_at) == ("done", clock.moment, None)
    assert "סומן כבוצע" in (await guest.get(story.done)).text


async def test_done_first_also_counts_as_seen_and_english_owners_read_english(
    db: Database, guest: httpx.AsyncClient, clock: MovableClock
) -> None:
    story = await handed_off(db, locale="en")
    page = await guest.get(story.done)
    assert 'lang="en"' in page.text and "Mark it done" in page.text
    await guest.post(story.done)
    done = await current(db, story.task)
    assert (done.status, done.acknowledged_at, done.acknowledged_via) == (
        "done",
        clock.moment,
        "link",
    )


async def test_forged_expired_and_foreign_tokens_change_nothing(
    db: Database, guest: httpx.AsyncClient, clock: MovableClock
) -> None:
    story = await handed_off(db)
    token = story.seen.removeprefix("/ack/")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    payload = ["seen", story.task.id.hex, story.owner.id.hex, int(clock.moment.timestamp()) + 99]
    foreign = [
        LINKS.button_id(story.task.id, story.owner.id, "seen", now=clock.moment),  # a button's
        URLSafeSerializer(SECRET, salt="mazkira.other").dumps(payload),  # another purpose
        URLSafeSerializer("another-secret-key-of-enough-length", salt=LINK).dumps(payload),
        URLSafeSerializer(SECRET, salt=LINK).dumps(["delete", *payload[1:]]),  # no such action
        URLSafeSerializer(SECRET, salt=LINK).dumps({"task": story.task.id.hex}),
        "not-a-token-at-all",
    ]
    for bad in [forged, *foreign]:
        for method in ("GET", "POST"):
            refused = await guest.request(method, f"/ack/{bad}")
            assert refused.status_code == 400, (method, bad)
            assert "הקישור אינו תקף" in refused.text
    elsewhere = LINKS.token(uuid.uuid4(), story.owner.id, "done", now=clock.moment)
    assert (await guest.post(f"/ack/{elsewhere}")).status_code == 404  # no such task of his

    clock.moment = SUNDAY_9 + timedelta(days=7)  # the link's lifetime is over
    for method in ("GET", "POST"):
        expired = await guest.request(method, story.done)
        assert expired.status_code == 400 and "פג תוקפו" in expired.text
    untouched = await current(db, story.task)
    assert (untouched.status, untouched.acknowledged_at) == ("open", None)


async def test_a_cancelled_task_cannot_be_answered(db: Database, guest: httpx.AsyncClient) -> None:
    story = await handed_off(db)
    async with db.transaction() as session:
        (await session.get_one(Task, story.task.id)).status = "cancelled"
    assert "בוטלה" in (await guest.get(story.done)).text
    assert (await guest.post(story.done)).status_code == 409
    assert (await current(db, story.task)).completed_at is None


async def test_whatsapp_owners_get_reply_buttons_whose_ids_are_signed(db: Database) -> None:
    story = await handed_off(db, phone="+972542345678", notify_channel="whatsapp")
    async with db.transaction(write=False) as session:
        [notice] = list(await session.scalars(select(Notification)))
    assert notice.channel == "whatsapp" and "/ack/" not in notice.body
    assert [b["title"] for b in notice.buttons or []] == ["ראיתי", "בוצעה"]
    async with FakeMeta() as meta:
        settings = Settings(
            database_url=db.url,
            secret_key=SECRET,
            whatsapp_access_token=meta.access_token,
            whatsapp_phone_number_id=meta.phone_number_id,
            whatsapp_api_url=meta.base_url,
            allow_private_provider_urls=True,
        )
        senders = Senders(settings)
        try:
            report = await send_due_notifications(db, senders, now=SUNDAY_9 + timedelta(minutes=1))
        finally:
            await senders.aclose()
    assert report == SendReport(sent=1)
    [message] = meta.messages
    interactive = message["interactive"]
    assert (message["type"], interactive["type"]) == ("interactive", "button")
    seen_id, done_id = (b["reply"]["id"] for b in interactive["action"]["buttons"])
    assert all(len(i) <= 256 for i in (seen_id, done_id))

    async def reply(payload: str, minutes: int = 20) -> bool:
        async with db.transaction() as session:
            return await apply_button_reply(
                session, payload, now=SUNDAY_9 + timedelta(minutes=minutes), secret_key=SECRET
            )

    link_token = story.seen.removeprefix("/ack/")
    assert await reply(seen_id[:-2] + "xx") is False  # forged
    assert await reply(link_token) is False  # a link's token is no button id
    assert await reply(seen_id, minutes=7 * 24 * 60 + 1) is False  # expired
    assert (await current(db, story.task)).acknowledged_at is None
    assert await reply(seen_id) is True
    seen = await current(db, story.task)
    assert (seen.acknowledged_via, seen.acknowledge_covered_minutes) == ("whatsapp", 20.0)
    assert await reply(done_id, minutes=30) is True
    assert await reply(done_id, minutes=40) is True  # a second tap: still done, nothing new
    done = await current(db, story.task)
    assert (done.status, done.completed_at) == ("done", SUNDAY_9 + timedelta(minutes=30))


async def test_send_buttons_refuses_what_meta_would_refuse() -> None:
    whatsapp = MetaWhatsApp("token", "1065", allow_private=True)
    too_many = [{"id": str(n), "title": f"option {n}"} for n in range(4)]
    too_long = [{"id": "1", "title": "x" * 21}]
    twins = [{"id": "1", "title": "same"}, {"id": "2", "title": "same"}]
    for buttons in (too_many, too_long, twins, []):
        with pytest.raises(ProviderError) as refused:
            await whatsapp.send_buttons("+972542345678", "body", buttons, idempotency_key="k")
        assert refused.value.retryable is False
    with pytest.raises(ProviderError):
        await whatsapp.send_buttons(
            "+972542345678", "", too_long[:0] + twins[:1], idempotency_key="k"
        )


def test_tokens_name_their_purpose() -> None:
    task_id, owner_id = uuid.uuid4(), uuid.uuid4()
    link = LINKS.token(task_id, owner_id, "seen", now=SUNDAY_9)
    button = LINKS.button_id(task_id, owner_id, "seen", now=SUNDAY_9)
    assert link != button and BUTTON != LINK
    assert LINKS.url(task_id, owner_id, "done", now=SUNDAY_9).startswith(f"{PUBLIC}/ack/")  # type: ignore[union-attr]
    assert TaskLinks(SECRET, None).url(task_id, owner_id, "done", now=SUNDAY_9) is None
    with pytest.raises(ValueError):
        LINKS.token(task_id, owner_id, "delete", now=SUNDAY_9)


async def test_the_owners_tap_comes_back_through_the_whatsapp_webhook(
    db: Database, clock: MovableClock
) -> None:
    story = await handed_off(db, phone="+972542345678", notify_channel="whatsapp")
    agency_line, app_secret = "106540352242922", "meta-app-secret-for-tests"
    seen_id = LINKS.button_id(story.task.id, story.owner.id, "seen", now=SUNDAY_9)
    settings = Settings(
        database_url=db.url,
        secret_key=SECRET,
        whatsapp_app_secret=app_secret,
        whatsapp_phone_number_id=agency_line,
    )

    def tap(button_id: str) -> Any:
        payload = meta_text_message_payload(
            from_wa_id="972542345678", body="", profile_name="בעל העסק", phone_number_id=agency_line
        )
        message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        del message["text"]
        message["type"] = "interactive"
        message["interactive"] = {
            "type": "button_reply",
            "button_reply": {"id": button_id, "title": "ראיתי"},
        }
        return signed_meta_body(app_secret, payload)

    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as meta:
            for button_id in ("forged", seen_id):
                signed = tap(button_id)
                answer = await meta.post(
                    "/intake/whatsapp", content=signed.body, headers=signed.headers
                )
                assert answer.status_code == 200, answer.text
    acknowledged = await current(db, story.task)
    assert acknowledged.acknowledged_via == "whatsapp"
    async with db.transaction(write=False) as session:  # a tap, forged or not, is no new lead
        assert len(list(await session.scalars(select(Lead)))) == 1
