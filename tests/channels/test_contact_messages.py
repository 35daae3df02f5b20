"""What a business sends its contact outside a conversation (an appointment's confirmation,
reminder and cancellation, a survey link) goes as the secretary's replies go: from the
business's own line (the agency's sender when it has none), in the contact's language, and on
WhatsApp outside the 24-hour window as the approved template. A cancelled appointment withdraws
its pending reminder, which the reminder job and the sender then never send. Through HTTP on
both databases, delivered to the fake providers."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.contact_messages import ContactRoute, route_to
from console.channels.lines import add_line
from console.channels.notify import Senders, send_due_notifications
from console.intake import arrivals
from console.intake.arrivals import Arrival, ById, NewLead, receive
from models import Business, Contact, Lead, Notification, User
from models.records import Appointment
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_business, make_user, sign_in
from tests.fakes import (
    FakeMeta,
    FakeSmtp,
    FakeTwilio,
    meta_text_message_payload,
    settings_with_fakes,
    signed_meta_body,
)
from workers.appointments import remind_appointments

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # Sunday 09:00 in Jerusalem, a working day
PUBLIC = "https://console.example.test"
META_SECRET = "meta-app-secret-for-tests"
LINE = "+97235551234"
MAILBOX = "cohen@in.mazkira.example"
AGENCY = "+97239990000"
CALLER = "+972542345678"
PHONE = "+972527654321"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    db: Database,
    twilio: FakeTwilio,
    meta: FakeMeta,
    smtp: FakeSmtp,
) -> Settings:
    return settings_with_fakes(
        db.url,
        SECRET,
        twilio,
        meta,
        smtp,
        public_url=PUBLIC,
        twilio_from=AGENCY,
        whatsapp_app_secret=META_SECRET,
        whatsapp_message_template=getattr(request, "param", None),
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def client(
    settings: Settings, db: Database, clock: MovableClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def business_with_lines(
    db: Database, meta: FakeMeta, *lines: str, name: str = "אינסטלציה כהן"
) -> tuple[Business, User]:
    addresses = {"sms": LINE, "whatsapp": meta.phone_number_id, "email": MAILBOX}
    async with db.transaction() as session:
        business = await make_business(session, name=name, locale="he")
        for channel in lines:
            await add_line(session, business, channel, addresses[channel])
        secretary = await make_user(session, "secretary", business)
    return business, secretary


async def lead_of(db: Database, business: Business) -> Lead:
    async with db.transaction() as session:
        return await arrivals.create_lead(
            session,
            None,
            NewLead(
                business_id=str(business.id),
                phone="052-7654321",
                email="dana@example.test",
                name="Dana",
            ),
            now=NOW,
            business=business,
        )


async def post(client: httpx.AsyncClient, path: str, page: str, **form: str) -> httpx.Response:
    token = await csrf_token(client, page)
    return await client.post(path, data={"csrf_token": token, **form})


async def edit_card(client: httpx.AsyncClient, lead: Lead, **fields: str) -> None:
    page = f"/contacts/{lead.contact_id}"
    answer = await post(client, page, page, **fields)
    assert answer.status_code == 303, answer.text


async def move(client: httpx.AsyncClient, lead_id: uuid.UUID, stage: str) -> None:
    page = f"/leads/{lead_id}"
    answer = await post(client, f"{page}/stage", page, stage=stage)
    assert answer.status_code == 303, answer.text


async def book(
    client: httpx.AsyncClient, lead_id: uuid.UUID, day: str, start: str, **more: str
) -> None:
    page = f"/leads/{lead_id}"
    answer = await post(
        client,
        f"{page}/appointments",
        page,
        day=day,
        start=start,
        minutes="30",
        title="ביקור",
        **more,
    )
    assert answer.status_code == 303, answer.text


async def appointments_of(db: Database, business: Business) -> list[Appointment]:
    async with db.transaction(write=False) as session:
        found = await session.scalars(
            select(Appointment)
            .where(Appointment.business_id == business.id)
            .order_by(Appointment.starts_at)
        )
        return list(found)


async def outbox(db: Database, prefix: str) -> dict[str, Notification]:
    async with db.transaction(write=False) as session:
        found = await session.scalars(
            select(Notification).where(Notification.idempotency_key.startswith(prefix))
        )
        return {n.idempotency_key.rsplit(":", 1)[1]: n for n in found}


async def send_all(db: Database, settings: Settings, now: datetime) -> None:
    senders = Senders(settings)
    try:
        await send_due_notifications(db, senders, now=now)
    finally:
        await senders.aclose()


# --- the business's own line, the contact's language ---------------------------------------------


@pytest.mark.parametrize(
    "settings", [None, "mazkira_message:he"], indirect=True, ids=["reply", "message"]
)
async def test_appointment_notices_go_on_whatsapp_from_the_line_and_as_a_template_later(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    meta: FakeMeta,
    clock: MovableClock,
) -> None:
    business, secretary = await business_with_lines(db, meta, "whatsapp", "sms")
    payload = meta_text_message_payload(
        from_wa_id=CALLER[1:], body="אפשר לקבוע ביקור?", profile_name="Dana"
    )
    signed = signed_meta_body(META_SECRET, payload)
    arrived = await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)
    assert arrived.status_code == 200, arrived.text
    async with db.transaction(write=False) as session:
        [lead] = list(await session.scalars(select(Lead).where(Lead.business_id == business.id)))
    await sign_in(client, secretary.email)
    await edit_card(client, lead, preferred_channel="whatsapp", locale="en")
    await move(client, lead.id, "meeting")
    await book(client, lead.id, "2026-11-25", "10:00", location="הרצל 1,\tתל אביב")  # Wednesday

    [appointment] = await appointments_of(db, business)
    confirm = (await outbox(db, f"appointment:{appointment.id}:"))["confirm"]
    assert (confirm.channel, confirm.recipient) == ("whatsapp", CALLER)
    assert confirm.sender == meta.phone_number_id and confirm.template == ""  # window open
    assert confirm.body.startswith(f"Your appointment with {business.name} is booked for")

    day_before = appointment.starts_at - timedelta(hours=20)  # the contact wrote 2 days ago
    ctx = {"db": db, "settings": settings}
    assert await remind_appointments(ctx, now=day_before) == 1
    reminder = (await outbox(db, f"appointment:{appointment.id}:"))["reminder"]
    assert reminder.channel == "whatsapp" and reminder.sender == meta.phone_number_id
    carried = settings.whatsapp_message_template is not None  # the text as its variable
    # the approved template, in her language
    assert reminder.template == ("mazkira_message:en:body" if carried else "follow_up:en")

    await send_all(db, settings, day_before)
    # sent side by side, so in no fixed order; both from the business's number
    text, template = sorted(meta.messages, key=lambda message: message["type"] != "text")
    assert text["type"] == "text" and text["to"] in (CALLER, CALLER[1:])
    assert text["text"]["body"] == confirm.body
    assert template["type"] == "template"
    if not carried:  # a template without variables: it cannot say when
        assert template["template"] == {"name": "follow_up", "language": {"code": "en"}}
    else:  # the reminder itself, when and all, on one line as Meta takes a variable
        assert reminder.body.startswith(f"A reminder: your appointment with {business.name}")
        assert "\nWhere: הרצל 1,\tתל אביב" in reminder.body  # a new line and a tab in it
        variable = {"type": "text", "text": " ".join(reminder.body.split())}
        assert "\n" not in variable["text"] and "\t" not in variable["text"]
        assert template["template"] == {
            "name": "mazkira_message",
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [variable]}],
        }
    assert all(f"/{meta.phone_number_id}/messages" in r.path for r in meta.requests)


async def test_sms_and_e_mail_from_the_business_s_lines_and_the_agency_s_without_them(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    meta: FakeMeta,
    twilio: FakeTwilio,
    smtp: FakeSmtp,
) -> None:
    business, secretary = await business_with_lines(db, meta, "sms", "email")
    lead = await lead_of(db, business)
    await sign_in(client, secretary.email)
    await edit_card(client, lead, preferred_channel="sms", locale="en")
    await move(client, lead.id, "meeting")
    await book(client, lead.id, "2026-11-23", "10:00")
    await edit_card(client, lead, preferred_channel="email")
    await move(client, lead.id, "won")  # the survey link, by e-mail this time

    [appointment] = await appointments_of(db, business)
    confirm = (await outbox(db, f"appointment:{appointment.id}:"))["confirm"]
    assert (confirm.channel, confirm.sender) == ("sms", LINE)
    [invite] = (await outbox(db, "survey:")).values()
    assert (invite.channel, invite.recipient, invite.sender) == (
        "email",
        "dana@example.test",
        MAILBOX,
    )
    await send_all(db, settings, NOW)
    [sms] = twilio.messages
    assert sms["from"] == LINE and sms["to"] == PHONE
    assert sms["body"].startswith(f"Your appointment with {business.name} is booked")
    [mail] = smtp.received
    assert mail.header("Reply-To") == MAILBOX
    assert mail.subject == f"How did we do? {business.name}"
    survey_path = re.search(re.escape(PUBLIC) + r"(/survey/\S+)", mail.text)
    assert survey_path is not None
    page = await client.get(survey_path.group(1))
    assert page.status_code == 200 and 'lang="en"' in page.text  # the page in her language too

    # A business without lines: the agency's number, in the business's language (Hebrew).
    bare, other = await business_with_lines(db, meta, name="מספרת רון")
    bare_lead = await lead_of(db, bare)
    await post(client, "/logout", "/inbox")
    await sign_in(client, other.email)
    await edit_card(client, bare_lead, preferred_channel="sms")
    await move(client, bare_lead.id, "meeting")
    await book(client, bare_lead.id, "2026-11-23", "11:00")
    [bare_appointment] = await appointments_of(db, bare)
    confirm = (await outbox(db, f"appointment:{bare_appointment.id}:"))["confirm"]
    assert confirm.sender == "" and "נקבעה" in confirm.body
    twilio.messages.clear()
    await send_all(db, settings, NOW)
    [sms] = twilio.messages
    assert sms["from"] == AGENCY and sms["body"] == confirm.body


# --- cancelling -------------------------------------------------------------------------------


async def test_cancelling_tells_the_contact_and_the_reminder_is_never_sent(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    meta: FakeMeta,
    twilio: FakeTwilio,
    clock: MovableClock,
) -> None:
    business, secretary = await business_with_lines(db, meta, "sms")
    lead = await lead_of(db, business)
    await sign_in(client, secretary.email)
    await edit_card(client, lead, preferred_channel="sms")
    await move(client, lead.id, "meeting")
    await book(client, lead.id, "2026-11-23", "10:00")
    await book(client, lead.id, "2026-11-23", "12:00")
    first, second = await appointments_of(db, business)
    await send_all(db, settings, NOW)
    assert len(twilio.messages) == 2  # both confirmations went out

    async def cancel(appointment: Appointment) -> None:
        page = f"/leads/{lead.id}"
        answer = await post(client, f"/appointments/{appointment.id}/cancel", page)
        assert answer.status_code == 303, answer.text

    # The second is cancelled before its reminder was queued: the job never queues it.
    await cancel(second)
    day_before = first.starts_at - timedelta(hours=20)
    ctx = {"db": db, "settings": settings}
    assert await remind_appointments(ctx, now=day_before) == 1
    assert "reminder" not in await outbox(db, f"appointment:{second.id}:")

    # The first is cancelled with its reminder queued and not sent yet: it is withdrawn.
    clock.moment = day_before
    await cancel(first)
    await cancel(first)  # a second click changes nothing
    notices = await outbox(db, f"appointment:{first.id}:")
    assert sorted(notices) == ["cancelled", "confirm", "reminder"]
    assert notices["reminder"].status == "withdrawn"  # called off, not a failure
    assert notices["reminder"].last_error == "withdrawn: the appointment was cancelled"
    assert (notices["cancelled"].channel, notices["cancelled"].sender) == ("sms", LINE)
    assert "בוטלה" in notices["cancelled"].body  # the business's (and her) language
    assert await remind_appointments(ctx, now=day_before + timedelta(minutes=5)) == 0

    twilio.messages.clear()
    await send_all(db, settings, day_before + timedelta(minutes=5))
    bodies = sorted(message["body"] for message in twilio.messages)
    cancellations = sorted(
        [
            (await outbox(db, f"appointment:{second.id}:"))["cancelled"].body,
            notices["cancelled"].body,
        ]
    )
    assert bodies == cancellations  # the two cancellations, and no reminder
    assert all(message["from"] == LINE for message in twilio.messages)
    async with db.transaction(write=False) as session:
        sent = await session.scalars(
            select(Notification.idempotency_key).where(Notification.status == "sent")
        )
        assert not [key for key in sent if key.endswith(":reminder")]


async def test_a_whatsapp_number_on_twilio_sends_text_in_the_window_and_sms_after(
    db: Database,
) -> None:
    """A notice to a contact who prefers WhatsApp, from a business whose WhatsApp number is on
    Twilio: inside the 24-hour window as text from that number; after it by SMS from the
    business's line, even with an approved template set (its templates need Twilio's Content
    API, which the console does not speak)."""
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
        await add_line(session, business, "whatsapp", "whatsapp:+97235551299")
        await add_line(session, business, "sms", LINE)
        arrived = await receive(
            session,
            Arrival(
                ById(business.id),
                "whatsapp",
                NOW,
                phone=CALLER,
                text="שלום",
                source="WhatsApp",
                message_id="SM" + "2" * 32,
            ),
        )
        contact = await session.get_one(Contact, arrived.contact_id)
        contact.preferred_channel = "whatsapp"
    for when, expected in [
        (NOW + timedelta(hours=2), ContactRoute("whatsapp", CALLER, "whatsapp:+97235551299", "")),
        (NOW + timedelta(hours=25), ContactRoute("sms", CALLER, LINE, "")),
    ]:
        async with db.transaction(write=False) as session:
            contact = await session.get_one(Contact, arrived.contact_id)
            found = await route_to(
                session, business, contact, whatsapp_template="follow_up", now=when
            )
        assert found == expected
