"""Security of what comes in: markup sent through every intake channel is shown as text in the
console, the owner's portal and the e-mails; webhooks without a good, fresh signature change
nothing.

Covered elsewhere, not repeated: SMS and e-mail markup on the inbox and lead page
(test_intake_channels.py::test_markup_sent_through_a_channel_is_shown_as_text); markup pushed
over the live socket (test_live.py::test_a_new_lead_reaches_every_console_of_its_business_and_
no_other); notes on the owner's lead page (test_portal.py::test_the_owners_lead_page_shows_the_
answers_of_the_version_used); forged and unsigned SMS, forged WhatsApp, stale and replayed
Mailgun posts (test_intake_channels.py::test_every_refusal_is_clear_and_writes_nothing); one
delivery sent five times written once (test_intake_channels.py::test_the_same_delivery_five_
times_at_once_is_written_once); signature checks against the providers' vectors
(test_signatures.py); header injection refused by the mail adapter
(test_providers.py::test_smtp_header_injection_is_refused_before_sending).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from console.base.config import Settings
from console.base.db import Database
from console.channels.lines import add_line
from console.channels.notify import Senders, send_due_notifications
from console.demo.webhook_payloads import new_sid
from console.leads import calls
from console.people import api_tokens
from console.sla import sla
from models import Business, Interaction, Lead, Notification, SlaPolicy, User
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.fakes import (
    FakeSmtp,
    SignedForm,
    mailgun_forward_form,
    meta_text_message_payload,
    signed_meta_body,
    signed_twilio_form,
    twilio_sms_params,
    twilio_status_params,
    twilio_voice_params,
)

PUBLIC = "https://console.mazkira.example"
ACCOUNT = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token-for-security"
META_SECRET = "meta-app-secret-for-security"
MAILGUN_KEY = "key-mailgun-signing-for-security"
LINE = "+97235551234"
WHATSAPP_LINE = "106540352242922"
MAILBOX = "cohen@in.mazkira.example"
RAW = re.compile(r"<script>alert\(|<img src=x|<svg/onload", re.I)  # the payload as markup


def payload(channel: str) -> str:
    return f'<script>alert("{channel}")</script><img src=x onerror=alert(1)><svg/onload=alert(2)>'


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        secret_key=SECRET,
        public_url=PUBLIC,
        twilio_auth_token=TWILIO_TOKEN,
        whatsapp_app_secret=META_SECRET,
        email_webhook_signing_key=MAILGUN_KEY,
    )


async def agency(db: Database) -> tuple[Business, User, User, str]:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen", always_open=True)
        for channel, address in [("sms", LINE), ("whatsapp", WHATSAPP_LINE), ("email", MAILBOX)]:
            await add_line(session, business, channel, address)
        session.add(
            SlaPolicy(
                business_id=business.id,
                channel="",
                priority="",
                first_response_minutes=1,
                warn_at_percent=[50],
                notify_owner_on_breach=True,
            )
        )
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business, locale="en")
        made = await api_tokens.create_token(session, owner, "site", now=datetime.now(UTC))
    return business, secretary, owner, made.secret


async def deliver(client: httpx.AsyncClient, signed: Any) -> httpx.Response:
    if isinstance(signed, SignedForm):
        return await client.post(signed.path, content=signed.body, headers=signed.headers)
    return await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)


def assert_escaped(html: str, where: str) -> None:
    found = RAW.search(html)
    assert found is None, (where, html[max(0, found.start() - 200) : found.end() + 200])


async def test_markup_through_every_channel_is_text_in_console_portal_and_mail(
    client: httpx.AsyncClient, db: Database
) -> None:
    business, secretary, owner, api_secret = await agency(db)
    sms = twilio_sms_params(
        from_="+972542345678", to=LINE, body=payload("sms"), account_sid=ACCOUNT
    )
    whatsapp = meta_text_message_payload(
        from_wa_id="972523456789",
        body=payload("whatsapp"),
        profile_name=payload("profile") + "\r\nBcc: eve@evil.example",
        phone_number_id=WHATSAPP_LINE,
    )
    mail = mailgun_forward_form(
        f"{PUBLIC}/intake/email",
        MAILGUN_KEY,
        sender="dana@example.com",
        recipient=MAILBOX,
        subject=payload("subject"),
        body_plain=payload("mail"),
        from_header=f'"{payload("from")}" <dana@example.com>',
    )
    for signed in (
        signed_twilio_form(f"{PUBLIC}/intake/twilio/sms", TWILIO_TOKEN, sms),
        signed_meta_body(META_SECRET, whatsapp),
        mail,
    ):
        assert (await deliver(client, signed)).status_code in (200, 201)
    form = {"name": payload("form"), "phone": "053-4567890", "message": payload("form message")}
    headers = {"X-Intake-Key": business.intake_key}
    assert (await client.post("/intake/cohen/form", json=form, headers=headers)).status_code < 300
    lead = {
        "business_id": str(business.id),
        "name": payload("api"),
        "phone": "055-5678901",
        "subject": payload("api subject"),
        "message": payload("api message"),
    }
    bearer = {"Authorization": f"Bearer {api_secret}"}
    assert (await client.post("/api/v1/leads", json=lead, headers=bearer)).status_code == 201
    async with db.transaction(write=False) as session:
        arrived = (await session.execute(select(Lead.id, Lead.contact_id))).all()
    assert len(arrived) == 5

    # Nobody answers in time: the owner is told of each breach by e-mail.
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await sla.sweep(session, now=now + timedelta(minutes=10))
    # Then a secretary handles each lead, writing the payload into her summary too.
    async with db.transaction() as session:
        for lead_id, _contact in arrived:
            call = await calls.start_interaction(
                session, secretary, lead_id, kind="outbound_call", now=now
            )
            await calls.wrap_up(
                session, secretary, call.id, notes=payload("notes"), summary=payload("summary"),
                answers={}, outcome="answered", now=now,
            )  # fmt: skip

    await sign_in(client, secretary.email)
    pages = ["/inbox", "/alerts", "/tasks", "/contacts?q=script", "/contacts"]
    pages += [f"/leads/{lead_id}" for lead_id, _ in arrived]
    pages += [f"/contacts/{contact}" for _, contact in arrived]
    shown = 0
    for page in pages:
        answer = await client.get(page)
        assert answer.status_code == 200, page
        assert_escaped(answer.text, page)
        shown += answer.text.count("&lt;script&gt;alert(")
    assert shown >= 20  # the text is there, as text
    await client.post("/logout", data={"csrf_token": await csrf_token(client, "/inbox")})

    await sign_in(client, owner.email)
    pages = ["/portal", "/portal?q=script"] + [f"/portal/leads/{lead_id}" for lead_id, _ in arrived]
    for page in pages:
        answer = await client.get(page)
        assert answer.status_code == 200, page
        assert_escaped(answer.text, page)
        assert "&lt;script&gt;alert(" in answer.text, page

    async with db.transaction(write=False) as session:
        queued = (await session.scalars(select(Notification))).all()
    assert queued and all(n.channel == "email" for n in queued)
    async with FakeSmtp() as smtp:
        senders = Senders(Settings(database_url=db.url, secret_key=SECRET, smtp_url=smtp.url()))
        report = await send_due_notifications(db, senders, now=now + timedelta(minutes=11))
        await senders.aclose()
    assert report.sent == len(queued) and not report.failed, report
    for received in smtp.received:
        message = received.message
        assert received.envelope_to == [owner.email]
        assert message.get_content_type() == "text/plain" and received.html == ""
        assert message["Bcc"] is None and "evil.example" not in str(message.keys())
    assert any("<script>alert(" in m.subject + m.text for m in smtp.received)  # as plain text


async def count(db: Database, model: type[Any]) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_webhooks_with_a_bad_missing_or_replayed_signature_change_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    await agency(db)
    caller = "+972542345678"
    sms = signed_twilio_form(
        f"{PUBLIC}/intake/twilio/sms",
        TWILIO_TOKEN,
        twilio_sms_params(from_=caller, to=LINE, body="שלום", account_sid=ACCOUNT),
    )
    assert (await deliver(client, sms)).status_code in (200, 201)
    sent = await client.post(
        "/intake/twilio/sms", content=sms.body, headers=sms.headers
    )  # the same post replayed
    assert sent.status_code in (200, 201)
    assert (await count(db, Lead), await count(db, Interaction)) == (1, 1)
    async with db.transaction() as session:
        interaction = (await session.scalars(select(Interaction))).one()
        interaction.direction, interaction.provider_message_id = "out", new_sid("SM")
        interaction.delivery_status = "queued"
    message_sid = interaction.provider_message_id

    voice = twilio_voice_params(from_=caller, to=LINE, account_sid=ACCOUNT)
    status = twilio_status_params(
        message_sid=message_sid, status="delivered", from_=LINE, to=caller, account_sid=ACCOUNT
    )
    good_voice = signed_twilio_form(f"{PUBLIC}/intake/twilio/voice", TWILIO_TOKEN, voice)
    good_status = signed_twilio_form(f"{PUBLIC}/intake/twilio/status", TWILIO_TOKEN, status)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    whatsapp = signed_meta_body(
        META_SECRET,
        meta_text_message_payload(from_wa_id="972523456789", body="היי", profile_name="x"),
    )
    refused: list[tuple[str, bytes, dict[str, str]]] = [
        ("/intake/twilio/voice", good_voice.body, form),  # missing
        ("/intake/twilio/voice", good_voice.body, {**form, "X-Twilio-Signature": "AAAA"}),
        # signed for another of our addresses
        ("/intake/twilio/voice", sms.body, sms.headers),
        ("/intake/twilio/status", good_status.body, form),
        ("/intake/twilio/status", good_status.body, {**good_voice.headers}),
        ("/intake/whatsapp", whatsapp.body, {"Content-Type": "application/json"}),
        (
            "/intake/whatsapp",
            whatsapp.body,
            {
                **whatsapp.headers,
                "X-Hub-Signature-256": signed_meta_body("other", {}).headers["X-Hub-Signature-256"],
            },
        ),
    ]
    for path, body, headers in refused:
        answer = await client.post(path, content=body, headers=headers)
        assert answer.status_code == 401, (path, headers, answer.text)
    assert (await count(db, Lead), await count(db, Interaction)) == (1, 1)
    async with db.transaction(write=False) as session:
        unchanged = await session.get_one(Interaction, interaction.id)
    assert unchanged.delivery_status == "queued"
