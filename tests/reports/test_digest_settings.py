"""Digests with a preview (issue 24, point 9), over HTTP on a clock the test moves, through the
local fake providers: the owner sees tomorrow's digest as it stands, sets its hour, channel and
content; the admin sees and sets it for him; it goes at his hour on his channel with his parts
only, and can be sent again. Sends that failed because their channel had no provider go once it
has one; the admin's page lists failed sends and retries one."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
from console.leads import calls
from console.reports.digests import queue_digests
from models import Notification
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_agency, make_user, sign_in
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio, settings_with_fakes

SUNDAY_10 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)  # 10:00 in Jerusalem
AVI_PHONE = "+972527654321"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_10)


@pytest.fixture
async def providers() -> AsyncIterator[tuple[FakeTwilio, FakeMeta, FakeSmtp]]:
    async with FakeTwilio() as twilio, FakeMeta() as meta, FakeSmtp() as smtp:
        yield twilio, meta, smtp


@pytest.fixture
async def web(db: Database, clock: MovableClock) -> AsyncIterator[object]:
    app = create_app(
        Settings(database_url=db.url, secret_key=SECRET), db=db, clock=clock, run_jobs=False
    )
    async with app.router.lifespan_context(app):
        yield app


def client_of(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def send_with(db: Database, settings: Settings, at: datetime) -> None:
    senders = Senders(settings)
    try:
        await send_due_notifications(db, senders, now=at)
    finally:
        await senders.aclose()


async def test_the_owner_previews_and_shapes_his_digest_and_failed_sends_go_again(
    db: Database,
    web: object,
    clock: MovableClock,
    providers: tuple[FakeTwilio, FakeMeta, FakeSmtp],
) -> None:
    twilio, meta, smtp = providers
    async with db.transaction() as session:
        agency = await make_agency(session, owner_a={"locale": "en"})
        a, avi = agency.a, agency.owner_a
        avi.phone = AVI_PHONE
        admin = await make_user(session, "admin")
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(a.id), phone="054-2345678", name="יעל כהן"),
            now=SUNDAY_10,
            business=a,
        )
        call = await calls.start_interaction(
            session, agency.secretary, lead.id, kind="inbound_call", now=SUNDAY_10
        )
        await calls.wrap_up(
            session,
            agency.secretary,
            call.id,
            notes="",
            summary="",
            answers={},
            outcome="answered",
            now=SUNDAY_10 + timedelta(minutes=3),
        )

    async with client_of(web) as owner:
        await sign_in(owner, avi.email)
        page_url = f"/portal/businesses/{a.id}/notices"
        page = await owner.get(page_url)
        assert page.status_code == 200 and "יעל כהן" in page.text  # today's call, in tomorrow's
        token = await csrf_token(owner, page_url)
        bad = await owner.post(
            page_url,
            data={"csrf_token": token, "calls": "every", "digest_hour": "24"},
            headers=HTMX,
        )
        assert bad.status_code == 422 and 'id="notices-digest_hour-error"' in bad.text
        assert 'value="24"' in bad.text
        saved = await owner.post(
            page_url,
            data={
                "csrf_token": token,
                "calls": "none",
                "digest_hour": "8",
                "digest_channel": "sms",
                "digest_sections": ["handled"],
            },
        )
        assert saved.status_code == 303
        page = await owner.get(page_url)
        assert "יעל כהן" in page.text and "Open tasks now" not in page.text  # his parts only
        theirs = await owner.post(
            f"/portal/businesses/{agency.b.id}/notices/resend", data={"csrf_token": token}
        )
        assert theirs.status_code == 404

    async with client_of(web) as boss:
        await sign_in(boss, admin.email)
        seen = await boss.get(f"/agency/businesses/{a.id}/notices?person={avi.id}")
        assert seen.status_code == 200 and "יעל כהן" in seen.text and 'value="8"' in seen.text

    monday_7_30 = datetime(2026, 11, 23, 5, 30, tzinfo=UTC)
    async with db.transaction() as session:
        assert (await queue_digests(session, now=monday_7_30)).queued == 1  # Dana's; his is at 8
    monday_8_10 = datetime(2026, 11, 23, 6, 10, tzinfo=UTC)
    async with db.transaction() as session:
        assert (await queue_digests(session, now=monday_8_10)).queued == 1

    clock.moment = monday_8_10 + timedelta(minutes=5)
    async with client_of(web) as owner:
        await sign_in(owner, avi.email)
        token = await csrf_token(owner, page_url)
        resent = await owner.post(f"{page_url}/resend", data={"csrf_token": token}, headers=HTMX)
        assert resent.status_code == 200 and 'role="status"' in resent.text

    mail_only = Settings(database_url=db.url, secret_key=SECRET, smtp_url=smtp.url())
    await send_with(db, mail_only, clock.moment)  # no SMS provider yet: both fail
    async with db.transaction(write=False) as session:
        digests = list(
            await session.scalars(
                select(Notification)
                .where(
                    Notification.user_id == avi.id,
                    Notification.idempotency_key.startswith("digest:"),
                )
                .order_by(Notification.created_at)
            )
        )
    assert [(n.channel, n.status) for n in digests] == [("sms", "failed"), ("sms", "failed")]

    async with client_of(web) as boss:
        await sign_in(boss, admin.email)
        failed = await boss.get("/agency/notifications")
        assert failed.status_code == 200 and failed.text.count('class="card failed-send"') == 2
        token = await csrf_token(boss, "/agency/notifications")
        retried = await boss.post(
            f"/agency/notifications/{digests[1].id}/retry", data={"csrf_token": token}
        )
        assert retried.status_code == 303
        again = await boss.post(
            f"/agency/notifications/{digests[1].id}/retry", data={"csrf_token": token}
        )
        assert again.status_code == 404  # no longer a failed send
        assert (
            await boss.post("/agency/notifications/not-an-id/retry", data={"csrf_token": token})
        ).status_code == 404

    configured = settings_with_fakes(db.url, SECRET, twilio, meta, smtp, twilio_from="+97235550000")
    await send_with(db, configured, clock.moment)  # the SMS provider is there now: both go
    assert [m["to"] for m in twilio.messages] == [AVI_PHONE, AVI_PHONE]
    assert all("יעל כהן" in m["body"] and "Open tasks" not in m["body"] for m in twilio.messages)
    digest_mail = [
        m for m in smtp.received if "יעל" not in m.subject and avi.email in m.header("To")
    ]
    assert digest_mail == []  # by his channel, not by e-mail (the call's message was)
