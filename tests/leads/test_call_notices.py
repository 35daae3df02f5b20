"""A message after every call (issue 24, point 1), over HTTP on a clock the test moves, through
the local fake providers: the secretary wraps up a call, and each owner of the business who
wants it is told on his channel, in his language, after his quiet hours (who called, what they
wanted, the answers, the outcome, what happens next, a link to mark it seen and the number to
call back); an owner who wants urgent calls only is not told of a normal one; the lead shows
each message's delivery and when it was seen. Refusals: bad settings stay in place, another
business's page is 404, a forged link 400."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.notify import Senders, send_due_notifications
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import scripts
from models import Notification, PushSubscription, Script
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_agency, make_user, sign_in
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio, settings_with_fakes

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem
PUBLIC = "https://console.example.test"
AVI_PHONE, DANA_PHONE = "+972527654321", "+972542345678"
SEEN_LINK = re.compile(re.escape(PUBLIC) + r"(/ack/call/\S+)")
HTMX = {"HX-Request": "true"}


@dataclass
class Fakes:
    twilio: FakeTwilio
    meta: FakeMeta
    smtp: FakeSmtp
    settings: Settings


@pytest.fixture
async def fakes(db: Database) -> AsyncIterator[Fakes]:
    async with FakeTwilio() as twilio, FakeMeta() as meta, FakeSmtp() as smtp:
        settings = settings_with_fakes(
            db.url,
            SECRET,
            twilio,
            meta,
            smtp,
            public_url=PUBLIC,
            twilio_from="+97235550000",
            whatsapp_phone_number_id=meta.phone_number_id,
        )
        yield Fakes(twilio, meta, smtp, settings)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_9)


@pytest.fixture
async def app_with_fakes(db: Database, fakes: Fakes, clock: MovableClock) -> AsyncIterator[object]:
    application = create_app(fakes.settings, db=db, clock=clock, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


def client_of(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def send(db: Database, fakes: Fakes, at: datetime) -> None:
    senders = Senders(fakes.settings)
    try:
        await send_due_notifications(db, senders, now=at)
    finally:
        await senders.aclose()


async def test_after_a_call_each_owner_is_told_on_his_channel_and_marks_it_seen(
    db: Database, fakes: Fakes, clock: MovableClock, app_with_fakes: object
) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session)
        a = agency.a
        agency.owner_a.phone, agency.owner_a.notify_channel = AVI_PHONE, "whatsapp"
        agency.owner_a.push_kinds = ["handoff", "call"]  # and his calls to his phone's browser
        session.add(
            PushSubscription(
                user_id=agency.owner_a.id,
                endpoint="https://push.example.net/send/avi",
                p256dh="B" + "A" * 86,
                auth="A" * 22,
            )
        )
        dana = await make_user(session, "owner", a, name="דנה", locale="en")
        dana.phone, dana.notify_channel = DANA_PHONE, "sms"
        admin = await make_user(session, "admin")
        await scripts.save_draft(
            session, None, a, scripts.ScriptDraft(greeting="שלום", questions="* כתובת | text")
        )
        await scripts.publish_draft(session, a, now=SUNDAY_9)
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(a.id), phone="054-2345678", name="יעל", subject="נזילה"),
            now=SUNDAY_9,
            business=a,
        )
    avi = agency.owner_a

    async with client_of(app_with_fakes) as owner:
        await sign_in(owner, avi.email)
        notices = f"/portal/businesses/{a.id}/notices"
        page = await owner.get(notices)
        assert page.status_code == 200 and ("Tomorrow" in page.text or "מחר" in page.text)
        token = await csrf_token(owner, notices)
        bad = await owner.post(
            notices,
            data={
                "csrf_token": token,
                "calls": "every",
                "quiet_from": "25:00",
                "quiet_to": "09:30",
            },
            headers=HTMX,
        )
        assert bad.status_code == 422 and 'id="notices-quiet_from-error"' in bad.text
        assert 'value="25:00"' in bad.text and "<html" not in bad.text  # in place, as typed
        saved = await owner.post(
            notices,
            data={
                "csrf_token": token,
                "calls": "every",
                "quiet_from": "08:00",
                "quiet_to": "09:30",
                "language": "en",
                "digest_hour": "7",
                "digest_sections": ["handled", "tasks"],
            },
            headers=HTMX,
        )
        assert saved.status_code == 200 and 'role="status"' in saved.text
        # another business's settings: not his
        assert (await owner.get(f"/portal/businesses/{agency.b.id}/notices")).status_code == 404

    async with client_of(app_with_fakes) as boss:
        await sign_in(boss, admin.email)
        admin_page = f"/agency/businesses/{a.id}/notices"
        token = await csrf_token(boss, f"{admin_page}?person={dana.id}")
        urgent_only = await boss.post(
            admin_page,
            data={
                "csrf_token": token,
                "person": str(dana.id),
                "calls": "urgent",
                "digest_hour": "7",
            },
        )
        assert urgent_only.status_code == 303
        stranger = await boss.get(f"{admin_page}?person={agency.owner_b.id}")
        assert stranger.status_code == 404  # not an owner of this business

    async with client_of(app_with_fakes) as secretary:
        await sign_in(secretary, agency.secretary.email)
        token = await csrf_token(secretary, "/inbox")
        lead_url = f"/leads/{lead.id}"
        await secretary.post(
            f"{lead_url}/calls", data={"csrf_token": token, "kind": "inbound_call"}
        )
        shown = await secretary.get(lead_url)
        call_id = re.search(r"/calls/([0-9a-f-]{36})/autosave", shown.text).group(1)  # type: ignore[union-attr]
        question = next(iter((await published(db, a.id)).questions))["id"]
        clock.moment = SUNDAY_9 + timedelta(minutes=5)
        wrapped = await secretary.post(
            f"/calls/{call_id}/wrap-up",
            data={
                "csrf_token": token,
                "notes": "",
                f"answers[{question}]": "הרצל 1",
                "outcome": "answered",
                "summary": "נזילה במטבח, רוצה טכנאי מחר",
            },
        )
        assert wrapped.status_code == 303

    async with db.transaction(write=False) as session:
        told = list(
            await session.scalars(select(Notification).where(Notification.lead_id == lead.id))
        )
        pushed = list(
            await session.scalars(select(Notification).where(Notification.channel == "push"))
        )
    [message] = told  # Avi; Dana wants urgent calls only, and this was a normal one
    assert (message.user_id, message.channel, message.recipient) == (avi.id, "whatsapp", AVI_PHONE)
    assert message.next_attempt_at == SUNDAY_9 + timedelta(minutes=30)  # after his quiet hours
    [push] = pushed  # the same message to his browser, held as long, opening the lead
    assert (push.user_id, push.subject, push.body) == (avi.id, message.subject, message.body)
    assert push.sender == f"/portal/leads/{lead.id}"
    assert push.next_attempt_at == message.next_attempt_at

    await send(db, fakes, clock.moment)
    assert fakes.meta.messages == []  # still quiet
    clock.moment = SUNDAY_9 + timedelta(minutes=30)
    await send(db, fakes, clock.moment)
    [sent] = fakes.meta.messages
    body = sent["text"]["body"]
    assert sent["to"] == AVI_PHONE.removeprefix("+")
    assert "יעל" in body and "+972542345678" in body and "נזילה במטבח" in body  # who, what
    assert "כתובת: הרצל 1" in body and "Outcome" in body and "Next" in body  # in English
    link = SEEN_LINK.search(body)
    assert link

    async with client_of(app_with_fakes) as secretary:
        await sign_in(secretary, agency.secretary.email)
        lead_page = await secretary.get(f"/leads/{lead.id}")
        part = lead_page.text[lead_page.text.index('id="owner-notices"') :]
        assert avi.name in part and ("Sent" in part or "נשלח" in part)

    async with client_of(app_with_fakes) as guest:
        opened = await guest.get(link.group(1))
        assert opened.status_code == 200 and "נזילה במטבח" in opened.text
        assert 'href="tel:+972542345678"' in opened.text
        clock.moment += timedelta(minutes=2)
        assert (await guest.post(link.group(1))).status_code == 303
        assert (await guest.post(link.group(1))).status_code == 303  # once: the first moment
        forged = await guest.get(link.group(1)[:-3] + "abc")
        assert forged.status_code == 400
    async with db.transaction(write=False) as session:
        seen = await session.get_one(Notification, message.id)
    assert seen.seen_at == SUNDAY_9 + timedelta(minutes=32)


async def published(db: Database, business_id: uuid.UUID) -> Script:
    async with db.transaction(write=False) as session:
        found = await scripts.published_script(session, business_id)
    assert found is not None
    return found
