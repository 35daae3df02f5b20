"""The on-call chain, on a clock the test moves: an urgent hand-off pages whoever the rota has on
call, the page goes out through the local fake providers, unanswered it passes to the next, and
a reply code by SMS or WhatsApp (through the real webhooks) or the page's link acknowledges it.
Codes work once, for their own page and phone only; an owner in a meeting is passed over; the
holidays and eves of the business's calendar and the weekly pattern pick who is first."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.notify import Senders, send_due_notifications
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.people.audit import Actor
from console.sla.sla import clock_for
from console.tasks import on_call, paging, tasks
from console.tasks.on_call import DatedShift, Link, RotaForm, Shift
from console.tasks.task_links import TaskLinks
from models import Alert, Business, Lead, Notification, Task, User
from models.on_call import Page
from tests.conftest import SECRET
from tests.factories import MovableClock, make_business, make_user
from tests.fakes import (
    FakeMeta,
    FakeSmtp,
    FakeTwilio,
    meta_text_message_payload,
    settings_with_fakes,
    signed_meta_body,
    signed_twilio_form,
    twilio_sms_params,
)

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
PUBLIC = "https://console.example.test"
LINKS = TaskLinks(SECRET, PUBLIC)
AGENCY_SMS = "+97235550000"
OWNER_PHONE, DEPUTY_PHONE = "+972527654321", "+972542345678"
CODE_IN_BODY = re.compile(r"\b(\d{6})\b")
LINK_IN_BODY = re.compile(re.escape(PUBLIC) + r"(/ack/on-call/\S+)")


@dataclass
class Rota:
    business: Business
    secretary: User
    owner: User
    deputy: User
    third: User
    lead: Lead


async def with_rota(db: Database) -> Rota:
    """Avi (owner, by SMS), then Dana (deputy, by WhatsApp), then Yossi (by e-mail); Dana is on
    call on Sunday evenings, Yossi on the holidays and on 1 December."""
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business, name="אבי")
        deputy = await make_user(session, "owner", business, name="דנה", locale="en")
        owner.phone, deputy.phone = OWNER_PHONE, DEPUTY_PHONE
        third = await make_user(session, "owner", business, name="יוסי")
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(business_id=str(business.id), phone="052-4567890", name="רות"),
            now=SUNDAY_9,
            business=business,
        )
        typed = RotaForm(
            "10",
            [
                Link(owner.id.hex, "sms"),
                Link(deputy.id.hex, "whatsapp"),
                Link(third.id.hex, "email"),
            ],
            [Shift("6", "18:00", "23:00", deputy.id.hex)],
            [DatedShift("2026-12-01", third.id.hex)],
            holidays=third.id.hex,
            eves=deputy.id.hex,
        )
        await on_call.save_rota(session, Actor.command_line(SUNDAY_9), business, typed)
    return Rota(business, secretary, owner, deputy, third, lead)


async def urgent(db: Database, rota: Rota, title: str, *, at: datetime) -> Task:
    async with db.transaction() as session:
        return await tasks.hand_off(
            session,
            rota.secretary,
            rota.lead.id,
            tasks.HandOff(
                assignee_id=str(rota.owner.id),
                title=title,
                due=(at + timedelta(hours=3))
                .astimezone(clock_for(rota.business).zone)
                .strftime("%Y-%m-%dT%H:%M"),
                priority="urgent",
            ),
            now=at,
            links=LINKS,
        )


async def pages_of(db: Database, task: Task) -> list[Page]:
    async with db.transaction(write=False) as session:
        found = await session.scalars(
            select(Page).where(Page.task_id == task.id).order_by(Page.position)
        )
        return list(found)


async def notice_of(db: Database, page: Page) -> Notification:
    async with db.transaction(write=False) as session:
        return await session.get_one(Notification, page.notification_id)


async def escalate(db: Database, at: datetime) -> int:
    async with db.transaction() as session:
        return await paging.escalate_due(session, now=at, links=LINKS)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(SUNDAY_9)


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
            twilio_from=AGENCY_SMS,
            whatsapp_phone_number_id=meta.phone_number_id,
            whatsapp_app_secret="meta-app-secret-for-tests",
        )
        yield Fakes(twilio, meta, smtp, settings)


@pytest.fixture
async def guest(
    db: Database, clock: MovableClock, fakes: Fakes
) -> AsyncIterator[httpx.AsyncClient]:
    """No session at all: the providers' webhooks and the paged person's link."""
    app = create_app(fakes.settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def sms_reply(client: httpx.AsyncClient, fakes: Fakes, sender: str, body: str) -> None:
    fields = twilio_sms_params(
        from_=sender, to=AGENCY_SMS, body=body, account_sid=fakes.twilio.account_sid
    )
    signed = signed_twilio_form(f"{PUBLIC}/intake/twilio/sms", fakes.twilio.auth_token, fields)
    answer = await client.post(signed.path, content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text


async def whatsapp_reply(client: httpx.AsyncClient, fakes: Fakes, sender: str, body: str) -> None:
    payload = meta_text_message_payload(
        from_wa_id=sender.removeprefix("+"),
        body=body,
        profile_name="Dana",
        phone_number_id=fakes.meta.phone_number_id,
    )
    signed = signed_meta_body("meta-app-secret-for-tests", payload)
    answer = await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text


async def leads_count(db: Database) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(Lead)) or 0)


async def send(db: Database, fakes: Fakes, at: datetime) -> Any:
    senders = Senders(fakes.settings)
    try:
        return await send_due_notifications(db, senders, now=at)
    finally:
        await senders.aclose()


async def test_an_urgent_hand_off_goes_down_the_chain_until_a_code_acknowledges_it(
    db: Database, guest: httpx.AsyncClient, clock: MovableClock, fakes: Fakes
) -> None:
    rota = await with_rota(db)
    task = await urgent(db, rota, "הצפה במרתף", at=SUNDAY_9)
    [first] = await pages_of(db, task)
    assert (first.user_id, first.channel, first.recipient) == (rota.owner.id, "sms", OWNER_PHONE)
    assert first.ack_due_at == SUNDAY_9 + timedelta(minutes=10)
    await send(db, fakes, SUNDAY_9)
    [sms] = [m for m in fakes.twilio.messages if m["to"] == OWNER_PHONE]
    assert "הצפה במרתף" in sms["body"] and first.code in sms["body"]
    assert sms["from"] == AGENCY_SMS and LINK_IN_BODY.search(sms["body"])
    assert (await notice_of(db, first)).status == "sent"  # its delivery, shown on the lead

    assert await escalate(db, SUNDAY_9 + timedelta(minutes=9)) == 0  # not yet
    clock.moment = SUNDAY_9 + timedelta(minutes=10)
    assert await escalate(db, clock.moment) == 1
    passed, second = await pages_of(db, task)
    assert (passed.passed_at, passed.ack_due_at) == (clock.moment, None)
    assert (second.user_id, second.channel, second.position) == (rota.deputy.id, "whatsapp", 2)
    await send(db, fakes, clock.moment)
    [whatsapp] = fakes.meta.messages
    assert second.code in whatsapp["text"]["body"] and "Urgent" in whatsapp["text"]["body"]

    leads = await leads_count(db)
    await sms_reply(guest, fakes, OWNER_PHONE, first.code)  # too late: his page passed on
    await whatsapp_reply(guest, fakes, DEPUTY_PHONE, first.code)  # not her page's code
    await whatsapp_reply(
        guest, fakes, DEPUTY_PHONE, "000000" if second.code != "0" * 6 else "1" * 6
    )
    assert all(p.acknowledged_at is None for p in await pages_of(db, task))
    clock.moment += timedelta(minutes=3)
    await whatsapp_reply(guest, fakes, DEPUTY_PHONE, f" {second.code} ")
    _, acknowledged = await pages_of(db, task)
    assert (acknowledged.acknowledged_at, acknowledged.acknowledged_via) == (
        clock.moment,
        "whatsapp",
    )
    assert acknowledged.ack_due_at is None
    clock.moment += timedelta(minutes=1)
    await whatsapp_reply(guest, fakes, DEPUTY_PHONE, second.code)  # once only
    assert (await pages_of(db, task))[1].acknowledged_at == clock.moment - timedelta(minutes=1)
    assert await leads_count(db) == leads  # no reply code became a customer's lead
    assert await escalate(db, clock.moment + timedelta(hours=1)) == 0  # she has it

    async with db.transaction(write=False) as session:
        shown = await paging.pages_of_lead(session, rota.lead.id)
    assert shown.holder is not None and shown.holder.page.user_id == rota.deputy.id
    assert [row.delivery for row in shown.rows] == ["sent", "sent"]


async def test_the_link_acknowledges_once_and_not_after_the_page_passed_on(
    db: Database, guest: httpx.AsyncClient, clock: MovableClock, fakes: Fakes
) -> None:
    rota = await with_rota(db)
    task = await urgent(db, rota, "Gas smell", at=SUNDAY_9)
    [first] = await pages_of(db, task)
    body = (await notice_of(db, first)).body
    match = LINK_IN_BODY.search(body)
    assert match is not None
    link = match.group(1)

    shown = await guest.get(link)
    assert shown.status_code == 200 and "אבי" in shown.text and 'dir="rtl"' in shown.text
    assert shown.headers["referrer-policy"] == "no-referrer"
    assert (await pages_of(db, task))[0].acknowledged_at is None  # a GET changes nothing
    assert (await guest.post(link[:-3] + "xyz")).status_code == 400  # forged
    clock.moment += timedelta(minutes=2)
    assert (await guest.post(link)).status_code == 303
    clock.moment += timedelta(minutes=1)
    assert (await guest.post(link)).status_code == 303  # again: nothing new
    [page] = await pages_of(db, task)
    assert (page.acknowledged_at, page.acknowledged_via) == (
        SUNDAY_9 + timedelta(minutes=2),
        "link",
    )

    later = await urgent(db, rota, "Second matter", at=clock.moment)
    [unanswered] = await pages_of(db, later)
    match = LINK_IN_BODY.search((await notice_of(db, unanswered)).body)
    assert match is not None
    await escalate(db, clock.moment + timedelta(minutes=10))
    refused = await guest.post(match.group(1))
    assert refused.status_code == 409  # it went to the next person
    assert (await pages_of(db, later))[0].acknowledged_at is None


async def test_who_is_paged_first_follows_availability_the_week_and_the_holidays(
    db: Database,
) -> None:
    rota = await with_rota(db)
    async with db.transaction() as session:
        owner = await session.get_one(User, rota.owner.id)
        owner.away_kind, owner.away_until = "meeting", SUNDAY_9 + timedelta(hours=1)
    task = await urgent(db, rota, "In a meeting", at=SUNDAY_9)
    [page] = await pages_of(db, task)
    assert page.user_id == rota.deputy.id  # he is in a meeting: the next in the chain
    await escalate(db, SUNDAY_9 + timedelta(minutes=10))
    [_, third] = await pages_of(db, task)
    assert (third.user_id, third.channel) == (rota.third.id, "email")  # he is skipped again
    await escalate(db, SUNDAY_9 + timedelta(minutes=20))
    assert len(await pages_of(db, task)) == 2  # the chain is done: nobody is paged twice
    # ... and the agency is alerted, once, on its alerts panel.
    async with db.transaction(write=False) as session:
        alerts = (await session.scalars(select(Alert).where(Alert.task_id == task.id))).all()
    assert [(a.kind, a.level) for a in alerts] == [("on_call_exhausted", "breach")]

    evening = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)  # Sunday 19:00: Dana's shift
    holiday = datetime(2027, 4, 22, 8, 0, tzinfo=UTC)  # Pesach
    eve = datetime(2027, 4, 21, 8, 0, tzinfo=UTC)
    dated = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    closed = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)  # a Wednesday the business closes
    async with db.transaction() as session:
        business = await session.get_one(Business, rota.business.id)
        business.hours_exceptions = {"closed_dates": ["2026-12-02"]}
    expected = [
        (evening, rota.deputy),
        (holiday, rota.third),
        (eve, rota.deputy),
        (dated, rota.third),
        (evening + timedelta(days=1), rota.owner),  # Monday evening: no shift, the chain's first
        (closed, rota.third),  # a day the business's hours close: its holiday person
    ]
    for moment, person in expected:
        page_task = await urgent(db, rota, f"at {moment}", at=moment)
        [first] = await pages_of(db, page_task)
        assert first.user_id == person.id, moment

    async with db.transaction() as session:  # a number no channel sends to: e-mail still does
        (await session.get_one(User, rota.owner.id)).phone = "+972501234567"
    unreachable = await urgent(db, rota, "no phone", at=evening + timedelta(days=1))
    [by_mail] = await pages_of(db, unreachable)
    assert (by_mail.channel, by_mail.recipient) == ("email", rota.owner.email)


async def test_the_rota_is_refused_in_place_for_people_or_times_that_cannot_be(
    db: Database,
) -> None:
    rota = await with_rota(db)
    async with db.transaction() as session:
        stranger = await make_user(session, "owner", await make_business(session))
    bad = [
        (RotaForm("0"), "ack_minutes"),
        (RotaForm("10", [Link(stranger.id.hex, "sms")]), "chain-0"),  # another business's
        (RotaForm("10", [Link(rota.third.id.hex, "sms")]), "chain-0"),  # no phone for SMS
        (RotaForm("10", [Link(rota.owner.id.hex, "fax")]), "chain-0"),
        (RotaForm("10", weekly=[Shift("6", "18:00", "09:00", rota.owner.id.hex)]), "weekly-0"),
        (RotaForm("10", dates=[DatedShift("2026-13-01", rota.owner.id.hex)]), "dates-0"),
    ]
    for typed, field in bad:
        with pytest.raises(Exception) as refused:
            async with db.transaction() as session:
                business = await session.get_one(Business, rota.business.id)
                await on_call.save_rota(session, Actor.command_line(SUNDAY_9), business, typed)
        assert getattr(refused.value, "field", None) == field, typed
    async with db.transaction(write=False) as session:
        kept = await on_call.rota_form(session, rota.business.id)
    assert [link.user for link in kept.chain] == [
        rota.owner.id.hex,
        rota.deputy.id.hex,
        rota.third.id.hex,
    ]
