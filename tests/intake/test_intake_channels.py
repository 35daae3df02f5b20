"""Leads arriving through the providers' webhooks, in their real formats and signatures."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree
from sqlalchemy import func, select

from console.base.config import Settings
from console.base.db import Database
from console.channels.lines import add_line
from console.intake.mailgun import html_to_text
from models import Business, Contact, Interaction, Lead, Line
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.fakes import (
    SignedForm,
    mailgun_forward_form,
    meta_status_payload,
    meta_text_message_payload,
    new_sid,
    signed_meta_body,
    signed_twilio_form,
    twilio_sms_params,
    twilio_status_params,
    twilio_voice_params,
)

PUBLIC = "https://console.mazkira.example"
ACCOUNT = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token-for-tests"
META_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "verify-me-please"
MAILGUN_KEY = "key-mailgun-signing-for-tests"
LINE = "+97235551234"
WHATSAPP_LINE = "106540352242922"
MAILBOX = "cohen@in.mazkira.example"
CALLER = "+972542345678"


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        secret_key=SECRET,
        public_url=PUBLIC,
        twilio_auth_token=TWILIO_TOKEN,
        whatsapp_app_secret=META_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        email_webhook_signing_key=MAILGUN_KEY,
        twilio_voice_forward_to="+97235550000",
        intake_rate_per_key=5,
        intake_rate_per_address=0,
    )


async def business_with_lines(db: Database, slug: str = "cohen") -> Business:
    async with db.transaction() as session:
        business = await make_business(session, slug=slug)
        for channel, address in [
            ("phone", LINE),
            ("sms", LINE),
            ("whatsapp", WHATSAPP_LINE),
            ("email", MAILBOX),
        ]:
            await add_line(session, business, channel, address)
    return business


def sms(body: str, *, sender: str = CALLER, to: str = LINE, sid: str | None = None) -> SignedForm:
    fields = twilio_sms_params(from_=sender, to=to, body=body, account_sid=ACCOUNT, message_sid=sid)
    return signed_twilio_form(f"{PUBLIC}/intake/twilio/sms", TWILIO_TOKEN, fields)


def call(sid: str, *, caller: str = CALLER, **extra: str) -> SignedForm:
    fields = twilio_voice_params(
        from_=caller, to=LINE, account_sid=ACCOUNT, call_sid=sid, extra=extra
    )
    if "CallStatus" in extra:
        fields["CallStatus"] = extra["CallStatus"]
    return signed_twilio_form(f"{PUBLIC}/intake/twilio/voice", TWILIO_TOKEN, fields)


def whatsapp(text: str, *, message_id: str | None = None, line: str = WHATSAPP_LINE) -> Any:
    payload = meta_text_message_payload(
        from_wa_id=CALLER.removeprefix("+"),
        body=text,
        profile_name="דנה",
        phone_number_id=line,
        message_id=message_id,
    )
    return signed_meta_body(META_SECRET, payload)


def mail(subject: str, **overrides: Any) -> SignedForm:
    arguments: dict[str, Any] = {
        "sender": "dana@example.com",
        "recipient": MAILBOX,
        "subject": subject,
        "body_plain": "",
        "body_html": "<p>שלום,</p><script>alert(1)</script><p>אשמח <b>להצעה</b></p>",
        "from_header": "Dana Levi <dana@example.com>",
        **overrides,
    }
    return mailgun_forward_form(f"{PUBLIC}/intake/email", MAILGUN_KEY, **arguments)


async def post(client: httpx.AsyncClient, signed: Any) -> httpx.Response:
    if isinstance(signed, SignedForm):
        return await client.post(signed.path, content=signed.body, headers=signed.headers)
    return await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)


async def count(db: Database, model: type[Any]) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_every_channel_finds_one_person_with_one_history(
    client: httpx.AsyncClient, db: Database
) -> None:
    await business_with_lines(db)
    first = sms("יש לי נזילה", sid=new_sid("SM"))
    answer = await post(client, first)
    assert answer.status_code == 200 and "<Response" in answer.text, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert (await post(client, first)).status_code == 200  # Twilio retries: nothing new
    # The same person on WhatsApp continues the open lead, as one contact.
    message_id = "wamid." + uuid.uuid4().hex
    assert (await post(client, whatsapp("אפשר מחר?", message_id=message_id))).json() == {
        "messages": 1,
        "statuses": 0,
    }
    again = await post(client, whatsapp("אפשר מחר?", message_id=message_id))
    assert again.json() == {"messages": 0, "statuses": 0}
    assert (await count(db, Lead), await count(db, Contact), await count(db, Interaction)) == (
        1,
        1,
        2,
    )
    async with db.transaction(write=False) as session:
        lead = await session.scalar(select(Lead))
        contact = await session.scalar(select(Contact))
    assert lead is not None and contact is not None
    assert lead.channel == "sms" and lead.respond_by is not None and lead.message == "יש לי נזילה"
    assert contact.phone == CALLER and contact.name == "דנה"  # WhatsApp's profile filled it in

    # She calls: the call joins her open lead at once (a third attempt on it), forwarded to the
    # agency; unanswered, the lead is a call-back.
    call_sid = new_sid("CA")
    ringing = await post(client, call(call_sid, CallStatus="ringing"))
    assert ringing.status_code == 200 and "<Dial" in ringing.text and "+97235550000" in ringing.text
    assert f'action="{PUBLIC}/intake/twilio/voice"' in ringing.text
    assert (await post(client, call(call_sid, CallStatus="ringing"))).status_code == 200
    missed = await post(
        client, call(call_sid, CallStatus="in-progress", DialCallStatus="no-answer")
    )
    assert missed.status_code == 200 and "<Say" in missed.text and "<Hangup" not in missed.text
    status = await post(client, call(call_sid, CallStatus="no-answer"))  # the final callback
    assert status.status_code == 200
    async with db.transaction(write=False) as session:
        called = await session.get_one(Lead, lead.id)
        calls = list(
            await session.scalars(select(Interaction).where(Interaction.kind == "inbound_call"))
        )
    assert await count(db, Lead) == 1 and called.attempts == 3
    assert called.priority == "high" and called.subject == "שיחה שלא נענתה: לחזור ללקוח"
    assert called.respond_by == lead.respond_by  # the first arrival's promise stands
    assert len(calls) == 1 and calls[0].outcome == "no_answer" and calls[0].lead_id == lead.id

    # An e-mail: HTML reduced to text, the script gone; the sender is a new contact.
    received = await post(client, mail("הצעת מחיר"))
    assert received.status_code == 201, received.text
    async with db.transaction(write=False) as session:
        by_mail = await session.get_one(Lead, uuid.UUID(received.json()["lead_id"]))
        person = await session.get_one(Contact, by_mail.contact_id)
    assert by_mail.channel == "email" and by_mail.subject == "הצעת מחיר"
    assert "alert(1)" not in by_mail.message and "אשמח להצעה" in by_mail.message
    assert person.email == "dana@example.com" and person.name == "Dana Levi"
    assert (await count(db, Lead), await count(db, Contact)) == (2, 2)


async def test_a_call_from_a_withheld_number_is_a_lead_answered_with_twiml(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Twilio names a withheld caller "Anonymous" (or "+266696687", ANONYMOUS on a keypad):
    the call is a lead all the same, as through the SIP server, its contact without a number
    (two such callers are not made one person), its subject saying the number is withheld,
    and Twilio gets TwiML it can carry out at every step; missed, it is a call-back."""
    await business_with_lines(db)
    for caller in ("Anonymous", "+266696687"):
        sid = new_sid("CA")
        ringing = await post(client, call(sid, caller=caller, CallStatus="ringing"))
        assert ringing.status_code == 200, ringing.text
        assert ringing.headers["content-type"].startswith("application/xml")
        dial = ElementTree.fromstring(ringing.text)
        assert dial.tag == "Response" and [v.tag for v in dial] == ["Dial"]
        assert dial[0].findtext("Number") == "+97235550000"
        missed = await post(
            client, call(sid, caller=caller, CallStatus="in-progress", DialCallStatus="busy")
        )
        said = ElementTree.fromstring(missed.text)
        assert missed.status_code == 200 and [v.tag for v in said] == ["Say"]
        assert said[0].get("language") == "he-IL" and said[0].text
    async with db.transaction(write=False) as session:
        leads = list(await session.scalars(select(Lead).order_by(Lead.created_at)))
        contacts = list(await session.scalars(select(Contact)))
        logs = list(await session.scalars(select(Interaction)))
    assert len(leads) == 2 and len(contacts) == 2 and len(logs) == 2
    assert all(c.phone is None and c.email is None for c in contacts)
    assert [lead.subject for lead in leads] == ["שיחה שלא נענתה: מספר חסוי"] * 2
    assert all(lead.priority == "high" and lead.respond_by for lead in leads)
    assert all(log.outcome == "no_answer" and log.kind == "inbound_call" for log in logs)


async def test_the_same_delivery_five_times_at_once_is_written_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    await business_with_lines(db)
    deliveries: list[Any] = [
        sms("שלום", sid=new_sid("SM")),
        call(new_sid("CA"), CallStatus="ringing"),
        whatsapp("היי", message_id="wamid." + uuid.uuid4().hex),
        mail("שאלה", message_id="<same-message@mail.example.com>", token="t" * 50),
    ]
    for delivery in deliveries:
        answers = await asyncio.gather(*(post(client, delivery) for _ in range(5)))
        assert all(200 <= a.status_code < 300 for a in answers), [a.text for a in answers]
    # SMS, WhatsApp and the call are one person, on one lead; the e-mail's sender is another.
    assert (await count(db, Lead), await count(db, Interaction), await count(db, Contact)) == (
        2,
        4,
        2,
    )


async def test_delivery_statuses_only_move_forward(client: httpx.AsyncClient, db: Database) -> None:
    business = await business_with_lines(db)
    async with db.transaction() as session:
        lead = await session.scalar(select(Lead))  # none yet
        assert lead is None
    await post(client, sms("שלום"))
    async with db.transaction() as session:
        lead = await session.scalar(select(Lead))
        assert lead is not None
        sent = Interaction(
            business_id=business.id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            kind="whatsapp",
            status="done",
            direction="out",
            provider_message_id="wamid.OUT",
            delivery_status="queued",
        )
        session.add(sent)
    for status in ("delivered", "sent", "read", "failed"):  # out of order, as Meta may send
        payload = meta_status_payload(
            message_id="wamid.OUT", status=status, recipient_id=CALLER[1:]
        )
        answer = await post(client, signed_meta_body(META_SECRET, payload))
        assert answer.status_code == 200
    async with db.transaction(write=False) as session:
        stored = await session.get_one(Interaction, sent.id)
    assert stored.delivery_status == "read" and stored.delivery_error == ""
    twilio = twilio_status_params(
        message_sid=new_sid("SM"), status="delivered", from_=LINE, to=CALLER, account_sid=ACCOUNT
    )
    unknown = signed_twilio_form(f"{PUBLIC}/intake/twilio/status", TWILIO_TOKEN, twilio)
    assert (await post(client, unknown)).status_code == 204  # not ours: accepted, nothing written


async def test_every_refusal_is_clear_and_writes_nothing(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await business_with_lines(db)
    good_sms = sms("שלום")
    forged = SignedForm(
        good_sms.url, good_sms.fields, {**good_sms.headers, "X-Twilio-Signature": "AAAA"}
    )
    unsigned = SignedForm(
        good_sms.url, good_sms.fields, {"Content-Type": good_sms.headers["Content-Type"]}
    )
    stranger = sms("שלום", to="+97237654321")
    bad_sid = signed_twilio_form(
        f"{PUBLIC}/intake/twilio/sms", TWILIO_TOKEN, {**good_sms.fields, "MessageSid": "nope"}
    )
    not_a_number = sms("שלום", sender="hello")
    meta = whatsapp("היי")
    meta_forged = type(meta)(
        meta.payload, meta.body, {**meta.headers, "X-Hub-Signature-256": "sha256=00"}
    )
    meta_stranger = whatsapp("היי", line="999999999")
    stale = mail("ישן", timestamp=int(time.time()) - 3600)
    used = mail("ראשון", token="r" * 50)
    replayed = mailgun_forward_form(
        f"{PUBLIC}/intake/email",
        MAILGUN_KEY,
        sender="eve@example.com",
        recipient=MAILBOX,
        subject="other",
        body_plain="other",
        token="r" * 50,
        timestamp=int(used.fields["timestamp"]),
    )
    unknown_mailbox = mail("x", recipient="nobody@in.mazkira.example")
    assert (await post(client, used)).status_code == 201
    cases: list[tuple[Any, int]] = [
        (forged, 401),
        (unsigned, 401),
        (stranger, 404),
        (bad_sid, 422),
        (not_a_number, 422),
        (meta_forged, 401),
        (meta_stranger, 404),
        (stale, 401),
        (replayed, 401),
        (unknown_mailbox, 404),
    ]
    for signed, status in cases:
        answer = await post(client, signed)
        assert answer.status_code == status, (signed, answer.text)
        assert answer.json()["error"], answer.text
    wrong_type = await client.post(
        "/intake/twilio/sms", content=b'{"a":1}', headers={"Content-Type": "application/json"}
    )
    assert wrong_type.status_code == 415
    not_json = await client.post(
        "/intake/whatsapp",
        content=b"{not json",
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=x"},
    )
    assert not_json.status_code == 401  # the signature is checked before anything is parsed
    huge = await client.post(
        "/intake/twilio/sms",
        content=b"Body=" + b"a" * 2_000_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 413
    assert (await count(db, Lead), await count(db, Interaction)) == (1, 1)  # only `used`


async def test_whatsapp_subscription_check(client: httpx.AsyncClient) -> None:
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    answer = await client.get("/intake/whatsapp", params=query)
    assert answer.status_code == 200 and answer.text == "1158201444"
    wrong = await client.get("/intake/whatsapp", params={**query, "hub.verify_token": "guess"})
    assert wrong.status_code == 401


async def test_web_form_intake_is_rate_limited_per_key(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="levi")
    headers = {"X-Intake-Key": business.intake_key}
    answers = [
        await client.post("/intake/levi/form", headers=headers, json={"phone": "054-2345678"})
        for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [201] * 5 + [429]
    assert int(answers[-1].headers["Retry-After"]) >= 1 and answers[-1].json()["error"]
    assert await count(db, Lead) == 5


async def test_an_address_sending_bad_signatures_is_held_back_and_no_other(
    client: httpx.AsyncClient, app: object, db: Database, settings: Settings
) -> None:
    """Providers' own addresses are never counted; forgers are, by their bad signatures."""
    await business_with_lines(db)
    good = sms("שלום")
    forged = SignedForm(good.url, good.fields, {**good.headers, "X-Twilio-Signature": "AAAA"})
    limit = settings.webhook_bad_signatures_per_address
    answers = [(await post(client, forged)).status_code for _ in range(limit)]
    assert answers == [401] * limit
    for held_back in (good, whatsapp("היי"), mail("שלום")):  # even signed well, this minute
        answer = await post(client, held_back)
        assert answer.status_code == 429, answer.text
        assert int(answer.headers["Retry-After"]) >= 1 and answer.json()["error"]
    assert await count(db, Lead) == 0
    provider = httpx.ASGITransport(app=app, client=("203.0.113.7", 443))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=provider, base_url="http://testserver") as twilio:
        assert [(await post(twilio, sms(f"הודעה {n}"))).status_code for n in range(3)] == [200] * 3
    assert await count(db, Interaction) == 3


async def test_a_line_belongs_to_one_business(db: Database) -> None:
    await business_with_lines(db)
    async with db.transaction() as session:
        other = await make_business(session, slug="other")
    from console.base.errors import Invalid

    with pytest.raises(Invalid):
        async with db.transaction() as session:
            await add_line(session, other, "sms", "03-555-1234")
    assert await count(db, Line) == 4


def test_html_bodies_become_plain_text() -> None:
    html = (
        "<html><head><style>p{}</style></head>"
        "<body><p>א</p><script>x()</script><div>ב  ג</div></body></html>"
    )
    assert html_to_text(html) == "א\nב ג"


async def test_an_admin_connects_a_business_and_its_site_posts_across_origins(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", business)
    page = f"/agency/businesses/{business.id}/channels"
    await sign_in(client, secretary.email)
    assert (await client.get(page)).status_code == 404
    await client.post("/logout", data={"csrf_token": await csrf_token(client, "/inbox")})
    await sign_in(client, admin.email)
    shown = await client.get(page)
    assert shown.status_code == 200 and business.intake_key in shown.text
    assert f"{PUBLIC}/intake/cohen/form" in shown.text and "/static/embed.js" in shown.text
    token = await csrf_token(client, page)
    lines_url = f"/agency/businesses/{business.id}/lines"
    added = await client.post(
        lines_url, data={"csrf_token": token, "channel": "sms", "address": "03-555-1234"}
    )
    assert added.status_code == 303
    refused = await client.post(
        lines_url, data={"csrf_token": token, "channel": "whatsapp", "address": "not digits"}
    )
    assert refused.status_code == 422 and "phone_number_id" in refused.text
    assert await count(db, Line) == 1
    rotated = await client.post(f"{page}/key", data={"csrf_token": token})
    assert rotated.status_code == 303
    async with db.transaction(write=False) as session:
        line = await session.scalar(select(Line))
        new_key = (await session.get_one(Business, business.id)).intake_key
    assert line is not None and line.address == LINE and new_key != business.intake_key
    removed = await client.post(f"{lines_url}/{line.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303 and await count(db, Line) == 0

    # The snippet's browser: a preflight from the business's site, then the post itself.
    origin = {"Origin": "https://www.cohen-plumbing.example"}
    preflight = await client.options(
        "/intake/cohen/form",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-intake-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "x-intake-key" in preflight.headers["access-control-allow-headers"].lower()
    sent = await client.post(
        "/intake/cohen/form",
        headers={**origin, "X-Intake-Key": new_key},
        json={"phone": "054-2345678", "external_id": "web-1"},
    )
    assert sent.status_code == 201 and sent.headers["access-control-allow-origin"] == "*"
    stale = await client.post(
        "/intake/cohen/form", headers={**origin, "X-Intake-Key": business.intake_key}, json={}
    )
    assert stale.status_code == 401 and stale.headers["access-control-allow-origin"] == "*"


def test_a_ringing_call_pops_up_as_a_call() -> None:
    from types import SimpleNamespace

    from console.base.i18n import using_locale
    from routes.templating import env

    row = SimpleNamespace(
        id="x",
        channel="phone",
        business_name="כהן",
        contact_name="",
        contact_phone=CALLER,
        contact_email=None,
        subject="",
    )
    with using_locale("en"):
        html = env.get_template("partials/attention.html").render(row=row)
    assert 'data-title="Incoming call · כהן"' in html and "054-234-5678" in html


async def test_markup_sent_through_a_channel_is_shown_as_text(
    client: httpx.AsyncClient, db: Database
) -> None:
    business = await business_with_lines(db)
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    await post(client, sms(payload))
    await post(client, mail(payload, body_plain=payload, from_header=f"{payload} <e@example.com>"))
    async with db.transaction() as session:
        secretary = await make_user(session, "secretary", business)
        leads = list(await session.scalars(select(Lead.id)))
    await sign_in(client, secretary.email)
    for page in ["/inbox", *(f"/leads/{lead_id}" for lead_id in leads)]:
        html = (await client.get(page)).text
        assert "<script>alert(1)" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;alert(1)" in html or page == "/inbox", page
