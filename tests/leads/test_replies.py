"""A secretary answers on the lead's channel; the providers' statuses come back beside the reply."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid
from console.channels.lines import add_line
from console.channels.notify import Senders, send_due_notifications
from console.leads.replies import send_reply
from models import Business, Contact, Interaction, Lead, Notification, User
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.fakes import (
    FakeMeta,
    FakeSmtp,
    FakeTwilio,
    mailgun_forward_form,
    meta_status_payload,
    meta_text_message_payload,
    settings_with_fakes,
    signed_meta_body,
    signed_twilio_form,
    twilio_status_params,
    twilio_whatsapp_params,
)

PUBLIC = "https://console.mazkira.example"
META_SECRET = "meta-app-secret-for-tests"
MAILGUN_KEY = "key-mailgun-signing-for-tests"
LINE = "+97235551234"
MAILBOX = "cohen@in.mazkira.example"
CALLER = "+972542345678"
REQUEST_KEY = re.compile(r'name="request_key" value="([^"]+)"')


@pytest.fixture
def settings(db: Database, twilio: FakeTwilio, meta: FakeMeta, smtp: FakeSmtp) -> Settings:
    return settings_with_fakes(
        db.url,
        SECRET,
        twilio,
        meta,
        smtp,
        public_url=PUBLIC,
        whatsapp_app_secret=META_SECRET,
        email_webhook_signing_key=MAILGUN_KEY,
    )


async def setting_up(db: Database, meta: FakeMeta) -> tuple[Business, User, User]:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen", name="אינסטלציה כהן")
        for channel, address in [
            ("sms", LINE),
            ("whatsapp", meta.phone_number_id),
            ("email", MAILBOX),
        ]:
            await add_line(session, business, channel, address)
        secretary = await make_user(session, "secretary", business, name="מיכל")
        admin = await make_user(session, "admin")
    return business, secretary, admin


async def whatsapp_lead(client: httpx.AsyncClient) -> uuid.UUID:
    payload = meta_text_message_payload(
        from_wa_id=CALLER[1:], body="כמה עולה החלפת ברז?", profile_name="דנה"
    )
    signed = signed_meta_body(META_SECRET, payload)
    answer = await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text
    return await only_lead_id(client)


async def only_lead_id(client: httpx.AsyncClient) -> uuid.UUID:
    db: Database = client._transport.app.state.db  # type: ignore[attr-defined]
    async with db.transaction(write=False) as session:
        ids = list(await session.scalars(select(Lead.id).order_by(Lead.created_at.desc())))
    return ids[0]


async def reply(
    client: httpx.AsyncClient, lead_id: uuid.UUID, channel: str, text: str, key: str | None = None
) -> httpx.Response:
    page = await client.get(f"/leads/{lead_id}")
    match = REQUEST_KEY.search(page.text)
    assert match
    return await client.post(
        f"/leads/{lead_id}/replies",
        data={
            "csrf_token": await csrf_token(client, f"/leads/{lead_id}"),
            "request_key": key or match.group(1),
            "channel": channel,
            "text": text,
        },
    )


async def outgoing(db: Database) -> list[Interaction]:
    async with db.transaction(write=False) as session:
        found = await session.scalars(
            select(Interaction)
            .where(Interaction.direction == "out")
            .order_by(Interaction.started_at)
        )
        return list(found)


async def test_a_secretary_answers_on_whatsapp_and_sees_it_read(
    client: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    meta: FakeMeta,
    twilio: FakeTwilio,
) -> None:
    business, secretary, admin = await setting_up(db, meta)
    # The agency keeps a canned reply beside the script.
    await sign_in(client, admin.email)
    script_page = f"/agency/businesses/{business.id}/script"
    saved = await client.post(
        f"/agency/businesses/{business.id}/replies",
        data={
            "csrf_token": await csrf_token(client, script_page),
            "locale": "he",
            "title": "מחירון",
            "body": "שלום {contact}, כאן {secretary} מ{business}. ביקור טכנאי 250 ₪.",
        },
    )
    assert saved.status_code == 303
    await client.post("/logout", data={"csrf_token": await csrf_token(client, "/agency")})

    lead_id = await whatsapp_lead(client)
    await sign_in(client, secretary.email)
    page = await client.get(f"/leads/{lead_id}")
    assert page.status_code == 200
    assert 'value="whatsapp" selected' in page.text  # the lead's own channel first
    assert "שלום דנה, כאן מיכל מאינסטלציה כהן. ביקור טכנאי 250 ₪." in page.text

    key = uuid.uuid4().hex
    for _ in range(2):  # a double click sends once
        sent = await reply(client, lead_id, "whatsapp", "שלום דנה, 250 ₪ לביקור", key=key)
        assert sent.status_code == 303, sent.text
    [message] = await outgoing(db)
    assert message.delivery_status == "queued" and message.user_id == secretary.id
    async with db.transaction(write=False) as session:
        lead = await session.get_one(Lead, lead_id)
        queued = await session.scalar(select(func.count()).select_from(Notification))
    assert lead.first_response_at is not None and lead.first_response_channel == "whatsapp"
    assert lead.stage == "contacted" and queued == 1

    senders = Senders(settings)
    try:
        report = await send_due_notifications(db, senders, now=datetime.now(UTC))
    finally:
        await senders.aclose()
    assert report.sent == 1
    [payload] = meta.messages
    assert payload["to"] == CALLER[1:] or payload["to"] == CALLER
    assert payload["text"]["body"] == "שלום דנה, 250 ₪ לביקור"
    [message] = await outgoing(db)
    assert message.delivery_status == "sent" and message.provider_message_id

    for status in ("read", "delivered"):  # "delivered" arriving late changes nothing
        update_ = meta_status_payload(
            message_id=message.provider_message_id or "", status=status, recipient_id=CALLER[1:]
        )
        signed = signed_meta_body(META_SECRET, update_)
        answer = await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)
        assert answer.status_code == 200
    [message] = await outgoing(db)
    assert message.delivery_status == "read"
    page = await client.get(f"/leads/{lead_id}")
    assert "delivery-read" in page.text

    # The same contact by SMS: from the business's line, with the status callback address.
    by_sms = await reply(client, lead_id, "sms", "נשלח גם ב-SMS")
    assert by_sms.status_code == 303
    senders = Senders(settings)
    try:
        await send_due_notifications(db, senders, now=datetime.now(UTC))
    finally:
        await senders.aclose()
    [sms] = twilio.messages
    assert sms["from"] == LINE and sms["to"] == CALLER
    [request] = twilio.requests
    assert request.form()["StatusCallback"] == [f"{PUBLIC}/intake/twilio/status"]
    sms_sid = (await outgoing(db))[1].provider_message_id or ""
    fields = twilio_status_params(
        message_sid=sms_sid,
        status="undelivered",
        from_=LINE,
        to=CALLER,
        account_sid=twilio.account_sid,
        error_code="30005",
    )
    callback = signed_twilio_form(f"{PUBLIC}/intake/twilio/status", twilio.auth_token, fields)
    answer = await client.post(callback.path, content=callback.body, headers=callback.headers)
    assert answer.status_code == 204
    failed = (await outgoing(db))[1]
    assert failed.delivery_status == "failed" and "30005" in failed.delivery_error

    # The lead page reads the messages as a conversation, oldest first: hers on the start side,
    # the agency's on the end with how far each got; a message has no call duration.
    page = await client.get(f"/leads/{lead_id}")
    thread = page.text.split(f'id="conversation-{lead_id}"')[1].split("</section>")[0]
    assert not thread.split(">")[0].rstrip().endswith("hidden")
    bubbles = thread.split('<li class="bubble ')[1:]
    assert [b.split('"')[0] for b in bubbles] == [
        "in kind-whatsapp",
        "out kind-whatsapp",
        "out kind-sms",
    ]
    assert "דנה" in bubbles[0] and "כמה עולה החלפת ברז?" in bubbles[0]
    assert "מיכל" in bubbles[1] and "delivery-read" in bubbles[1]
    assert "נשלח גם ב-SMS" in bubbles[2] and "delivery-failed" in bubbles[2]
    assert not re.search(r"· \d+:\d\d\b", page.text)  # no "0:00" beside a message


async def test_outside_the_whatsapp_window_only_the_template_goes(
    client: httpx.AsyncClient, db: Database, settings: Settings, meta: FakeMeta
) -> None:
    _business, secretary, _admin = await setting_up(db, meta)
    lead_id = await whatsapp_lead(client)
    async with db.transaction() as session:  # the contact wrote 25 hours ago
        await session.execute(
            update(Interaction).values(started_at=datetime.now(UTC) - timedelta(hours=25))
        )
    await sign_in(client, secretary.email)
    page = await client.get(f"/leads/{lead_id}")
    assert "follow_up" in page.text  # the console says what will go instead
    assert (await reply(client, lead_id, "whatsapp", "")).status_code == 303
    senders = Senders(settings)
    try:
        await send_due_notifications(db, senders, now=datetime.now(UTC))
    finally:
        await senders.aclose()
    [payload] = meta.messages
    assert payload["type"] == "template"
    assert payload["template"]["name"] == "follow_up"
    assert payload["template"]["language"]["code"] == "he"

    # Without a configured template there is nothing to send, and nothing is written.
    with pytest.raises(Invalid):
        async with db.transaction() as session:
            user = await session.get_one(User, secretary.id)
            await send_reply(
                session, user, lead_id, channel="whatsapp", text="hi", now=datetime.now(UTC)
            )
    assert len(await outgoing(db)) == 1


async def test_a_whatsapp_number_on_twilio_takes_leads_and_replies_through_twilio(
    client: httpx.AsyncClient, db: Database, settings: Settings, twilio: FakeTwilio
) -> None:
    """A business whose WhatsApp number is on Twilio (its line `whatsapp:+…`): Twilio posts the
    message to the messaging webhook with `whatsapp:` addresses, the reply goes back through
    Twilio's Messages API from that number, its status comes back on the status callback; past
    the 24-hour window the console refuses (templates on Twilio need its Content API)."""
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen", name="אינסטלציה כהן")
        line = await add_line(session, business, "whatsapp", "+972-3-555-1299")
        secretary = await make_user(session, "secretary", business, name="מיכל")
    assert line.address == "whatsapp:+97235551299"
    fields = twilio_whatsapp_params(
        from_=f"whatsapp:{CALLER}",
        to=line.address,
        body="כמה עולה החלפת ברז?",
        account_sid=twilio.account_sid,
        profile_name="דנה",
    )
    for _ in range(2):  # Twilio retries: one lead
        signed = signed_twilio_form(f"{PUBLIC}/intake/twilio/sms", twilio.auth_token, fields)
        answer = await client.post(signed.path, content=signed.body, headers=signed.headers)
        assert answer.status_code == 200, answer.text
    elsewhere = signed_twilio_form(
        f"{PUBLIC}/intake/twilio/sms",
        twilio.auth_token,
        {**fields, "To": "whatsapp:+97235550000", "MessageSid": "SM" + "1" * 32},
    )
    answer = await client.post(elsewhere.path, content=elsewhere.body, headers=elsewhere.headers)
    assert answer.status_code == 404  # no line has that number: nothing written
    lead_id = await only_lead_id(client)
    async with db.transaction(write=False) as session:
        lead = await session.get_one(Lead, lead_id)
        contact = await session.get_one(Contact, lead.contact_id)
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1
    assert (lead.channel, lead.source) == ("whatsapp", "WhatsApp")
    assert (contact.phone, contact.name) == (CALLER, "דנה")

    await sign_in(client, secretary.email)
    assert (await reply(client, lead_id, "whatsapp", "שלום דנה, 250 ₪")).status_code == 303
    senders = Senders(settings)
    try:
        assert (await send_due_notifications(db, senders, now=datetime.now(UTC))).sent == 1
    finally:
        await senders.aclose()
    [sent] = twilio.messages
    assert (sent["from"], sent["to"]) == (line.address, f"whatsapp:{CALLER}")
    assert sent["body"] == "שלום דנה, 250 ₪"
    [request] = twilio.requests
    assert request.form()["StatusCallback"] == [f"{PUBLIC}/intake/twilio/status"]
    status = twilio_status_params(
        message_sid=sent["sid"],
        status="read",
        from_=line.address,
        to=f"whatsapp:{CALLER}",
        account_sid=twilio.account_sid,
    )
    callback = signed_twilio_form(f"{PUBLIC}/intake/twilio/status", twilio.auth_token, status)
    answer = await client.post(callback.path, content=callback.body, headers=callback.headers)
    assert answer.status_code == 204
    [message] = await outgoing(db)
    assert message.delivery_status == "read"

    async with db.transaction() as session:  # the contact wrote 25 hours ago
        await session.execute(
            update(Interaction).values(started_at=datetime.now(UTC) - timedelta(hours=25))
        )
    with pytest.raises(Invalid, match="Twilio"):
        async with db.transaction() as session:
            user = await session.get_one(User, secretary.id)
            await send_reply(
                session,
                user,
                lead_id,
                channel="whatsapp",
                text="",
                now=datetime.now(UTC),
                template="follow_up:he",
            )
    assert len(await outgoing(db)) == 1


async def test_an_email_lead_is_answered_by_mail_and_bad_replies_are_refused(
    client: httpx.AsyncClient, db: Database, meta: FakeMeta, smtp: FakeSmtp, settings: Settings
) -> None:
    business, secretary, _admin = await setting_up(db, meta)
    signed = mailgun_forward_form(
        f"{PUBLIC}/intake/email",
        MAILGUN_KEY,
        sender="dana@example.com",
        recipient=MAILBOX,
        subject="הצעת מחיר למטבח",
        body_plain="שלום, אשמח להצעה",
    )
    arrived = await client.post(signed.path, content=signed.body, headers=signed.headers)
    assert arrived.status_code == 201
    lead_id = uuid.UUID(arrived.json()["lead_id"])
    await sign_in(client, secretary.email)
    refusals = [("sms", "hello"), ("email", ""), ("fax", "hello"), ("email", "x" * 20_001)]
    for channel, text in refusals:  # no phone for SMS, empty, unknown, too long
        answer = await reply(client, lead_id, channel, text)
        assert answer.status_code == 422, (channel, answer.text)
    assert await outgoing(db) == []
    assert (await reply(client, lead_id, "email", "נשלח אליך מחירון")).status_code == 303
    senders = Senders(settings)
    try:
        await send_due_notifications(db, senders, now=datetime.now(UTC))
    finally:
        await senders.aclose()
    [mail] = smtp.received
    assert mail.subject == "Re: הצעת מחיר למטבח"
    assert mail.header("Reply-To") == MAILBOX and "נשלח אליך מחירון" in mail.text
    [message] = await outgoing(db)
    assert message.delivery_status == "sent"

    # Another business's secretary, and the owner, cannot answer this lead.
    async with db.transaction() as session:
        other = await make_business(session)
        stranger = await make_user(session, "secretary", other)
        owner = await make_user(session, "owner", business)
    for person in (stranger, owner):
        async with db.transaction() as session:
            user = await session.get_one(User, person.id)
            with pytest.raises(Exception) as refused:
                await send_reply(
                    session, user, lead_id, channel="email", text="x", now=datetime.now(UTC)
                )
        assert getattr(refused.value, "status", None) == 404
