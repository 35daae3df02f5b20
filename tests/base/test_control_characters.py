"""Control characters never reach the database raw. Every route of the app that takes text (the
URL map enumerated, so a route added later is walked too) refuses a C0 control character other
than tab and line breaks in a query, form, multipart or JSON field with 422 naming the field,
and a path holding one with 404, writing nothing; the providers' signed webhooks (which would
retry and then drop a refused message) answer 2xx and store the text without them."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from starlette.routing import Mount, Route, WebSocketRoute

from console.base.config import Settings
from console.base.db import Database
from console.channels.lines import add_line
from console.contacts.contact_import import guess_mapping, import_contacts
from console.contacts.sheet_files import read_sheet
from console.voice.signatures import sign
from models import Base, Contact, Interaction, Lead
from models.voice import Call
from routes import routes as url_map
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.fakes import (
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
TWILIO_TOKEN = "twilio-auth-token-for-controls"
META_SECRET = "meta-app-secret-for-controls"
MAILGUN_KEY = "key-mailgun-signing-for-controls"
SIP_SECRET = "sipSecretForControls"
LINE, WHATSAPP_LINE, MAILBOX = "+97235551234", "106540352242922", "cohen@in.mazkira.example"
# Signed by their providers: walked by the second test, not refused.
PROVIDERS = {
    "/intake/twilio/sms",
    "/intake/twilio/voice",
    "/intake/twilio/status",
    "/intake/whatsapp",
    "/intake/email",
    "/sip/route",
    "/sip/events",
    "/sip/voicemail",
}
CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x1f"]


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        secret_key=SECRET,
        public_url=PUBLIC,
        twilio_auth_token=TWILIO_TOKEN,
        whatsapp_app_secret=META_SECRET,
        email_webhook_signing_key=MAILGUN_KEY,
        intake_rate_per_key=10_000,
        intake_rate_per_address=10_000,
        sip_secret=SIP_SECRET,
        sip_ws_url="wss://sip.mazkira.example/ws",
    )


def taking_text() -> list[tuple[str, str]]:
    """Every (method, path template) of the URL map but the providers' webhooks."""
    walked = []
    for route in url_map:
        if isinstance(route, Mount | WebSocketRoute):
            assert route.path in ("/static", "/ws"), route.path  # no text goes in there
            continue
        assert isinstance(route, Route)
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            if route.path not in PROVIDERS:
                walked.append((method, route.path))
    return walked


def filled(path: str) -> str:
    """The path with each parameter given: an id as a UUID, anything else as text."""
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        name = path[start + 1 : end]
        value = str(uuid.uuid4()) if name.endswith("_id") else "cohen"
        path = path[:start] + value + path[end + 1 :]
    return path


async def rows(db: Database) -> dict[str, int]:
    async with db.transaction(write=False) as session:
        return {
            table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
            for table in Base.metadata.sorted_tables
        }


def refused(answer: httpx.Response, field: str, where: str) -> None:
    assert answer.status_code == 422, (where, answer.status_code, answer.text[:300])
    body = answer.json()
    assert body["field"] == field and field in body["error"], (where, body)


async def test_every_route_taking_text_refuses_control_characters(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
        admin = await make_user(session, "admin")
    await sign_in(client, admin.email)
    token = await csrf_token(client, "/agency")
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}
    headers["X-Intake-Key"] = business.intake_key
    before = await rows(db)
    walked = taking_text()
    assert len(walked) > 100  # the whole map, not a part of it
    for n, (method, template) in enumerate(walked):
        path, control = filled(template), CONTROLS[n % len(CONTROLS)]
        where = f"{method} {template}"
        if method == "GET":
            answer = await client.get(path, params={"q": f"a{control}b"}, headers=headers)
            refused(answer, "q", where)
            continue
        for body in (
            {"data": {"name": f"דנה{control}", "phone": "054-2345678"}},
            {"json": {"phone": "054-2345678", "message": f"x{control}"}},
            {
                "files": {
                    "file": ("a.csv", b"\x00\x01binary is a file's own"),
                    "notes": (None, control),
                }
            },
        ):
            answer = await client.request(method, path, headers=headers, **body)
            field = {"data": "name", "json": "message", "files": "notes"}[next(iter(body))]
            refused(answer, field, where)
        answer = await client.request(method, path + "%00", headers=headers, data={"a": "b"})
        assert answer.status_code == 404, where
    assert await rows(db) == before
    # Tabs and line breaks are text: a search with them is answered.
    answer = await client.get("/contacts", params={"q": "a\tb\r\nc"}, headers=headers)
    assert answer.status_code == 200


async def deliver(client: httpx.AsyncClient, signed: Any) -> httpx.Response:
    if isinstance(signed, SignedForm):
        return await client.post(signed.path, content=signed.body, headers=signed.headers)
    return await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)


async def test_providers_webhooks_store_text_without_control_characters(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen", always_open=True)
        for channel, address in [
            ("sms", LINE),
            ("phone", LINE),
            ("whatsapp", WHATSAPP_LINE),
            ("email", MAILBOX),
        ]:
            await add_line(session, business, channel, address)
    poison = "\x00\x01\x1b"
    sms = twilio_sms_params(
        from_="+972542345678", to=LINE, body=f"שלום{poison}\tעולם\n", account_sid=ACCOUNT
    )
    status = twilio_status_params(
        message_sid="SM" + "2" * 32 + poison, status="delivered", from_=LINE, to="+972542345678",
        account_sid=ACCOUNT,
    )  # fmt: skip
    voice = twilio_voice_params(
        from_="+972527654321", to=LINE, account_sid=ACCOUNT, call_sid="CA" + "1" * 32 + poison
    )
    whatsapp = meta_text_message_payload(
        from_wa_id="972533456789",
        body=f"היי{poison}",
        profile_name=f"רות{poison}",
        phone_number_id=WHATSAPP_LINE,
    )
    mail = mailgun_forward_form(
        f"{PUBLIC}/intake/email",
        MAILGUN_KEY,
        sender="dana@example.com",
        recipient=MAILBOX,
        subject=f"נושא{poison}",
        body_plain=f"גוף{poison}",
        from_header=f'"דנה{poison}" <dana@example.com>',
        message_id=f"<m{poison}@example.com>",
    )
    for signed in (
        signed_twilio_form(f"{PUBLIC}/intake/twilio/sms", TWILIO_TOKEN, sms),
        signed_twilio_form(f"{PUBLIC}/intake/twilio/status", TWILIO_TOKEN, status),
        signed_twilio_form(f"{PUBLIC}/intake/twilio/voice", TWILIO_TOKEN, voice),
        signed_meta_body(META_SECRET, whatsapp),
        mail,
    ):
        answer = await deliver(client, signed)
        assert 200 <= answer.status_code < 300, (signed, answer.status_code, answer.text[:300])
    call = {
        "direction": "in",
        "call_id": f"c{poison}@carrier",
        "caller": "+972523456789",
        "caller_name": f"אבי{poison}",
        "dialled": LINE,
        "attempt": "1",
    }
    body, stamp = urlencode(call).encode(), str(int(time.time()))
    answer = await client.post(
        "/sip/route",
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Mazkira-Timestamp": stamp,
            "X-Mazkira-Signature": sign(SIP_SECRET, stamp, body),
        },
    )
    assert answer.status_code == 200, answer.text
    async with db.transaction(write=False) as session:
        texts = [
            *(await session.scalars(select(Interaction.notes))),
            *(await session.scalars(select(Interaction.summary))),
            *(await session.scalars(select(Interaction.provider_message_id))),
            *(await session.scalars(select(Lead.subject))),
            *(await session.scalars(select(Lead.message))),
            *(await session.scalars(select(Lead.external_id))),
            *(await session.scalars(select(Contact.name))),
        ]
        texts += (await session.scalars(select(Call.sip_call_id))).all()
        assert await session.scalar(select(func.count()).select_from(Lead)) == 5
    assert "שלום\tעולם" in texts and "היי" in texts and "רות" in texts and "גוף" in texts
    assert "אבי" in texts and "c@carrier" in texts
    assert not [text for text in texts if text and any(c in text for c in poison)]


async def test_an_imported_files_cells_are_kept_without_control_characters(
    db: Database,
) -> None:
    """A file is not typed text: its cells' stray controls are dropped, as a provider's are."""
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
    content = "שם,טלפון\nרות\x01 כהן\x1b,054-2345678\nדנה\x0b,052-7654321\n".encode()
    sheet = read_sheet("customers.csv", content)
    assert sheet.rows == [["רות כהן", "054-2345678"], ["דנה", "052-7654321"]]
    async with db.transaction() as session:
        await import_contacts(session, business, sheet, guess_mapping(sheet.headers), merge=False)
    async with db.transaction(write=False) as session:
        names = sorted((await session.scalars(select(Contact.name))).all())
    assert names == ["דנה", "רות כהן"]
