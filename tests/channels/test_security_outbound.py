"""Security of what goes out and what is written down: provider URLs on loopback or private
networks are refused before anything is sent, media links in incoming messages are never
fetched, and no secret reaches a log line or an error page.

Covered elsewhere, not repeated: the URL guard's list of refused addresses (loopback, 10/8,
172.16/12, 192.168/16, 169.254/16, CGNAT, IPv6 local, mapped, `localhost`) and its schemes
(test_providers.py::test_private_hosts_are_refused, ::test_only_http_urls_are_accepted,
::test_adapter_refuses_a_private_base_url_before_sending); a provider echoing its token into
an error (test_notify.py::test_secrets_never_reach_last_error); passwords kept out of the audit
(test_admin.py::test_agency_administration_story).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from console.agency.admin import password_link_token
from console.base.config import Settings
from console.base.db import Database
from console.calendar.calendar_feed import feed_token
from console.channels.lines import add_line
from console.channels.notify import Senders, queue_notification, send_due_notifications
from console.people import api_tokens
from models import Notification
from tests.conftest import SECRET
from tests.factories import PASSWORD, csrf_token, make_business, make_user, sign_in
from tests.fakes import (
    FakeHttpServer,
    FakeMeta,
    FakeTwilio,
    signed_meta_body,
    signed_twilio_form,
    twilio_sms_params,
)
from tests.served import served

NOW = datetime.now(UTC)
DB_PASSWORD = "db-password-inside-an-exception"


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, secret_key=SECRET, public_url="https://console.example")


async def queue_both(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        for channel in ("sms", "whatsapp"):
            await queue_notification(
                session,
                key=f"private:{channel}",
                business_id=business.id,
                channel=channel,
                recipient="+972542345678",
                body="שלום",
                now=NOW,
            )


@pytest.mark.parametrize(
    "where",
    ["loopback", "http://10.1.2.3", "http://169.254.169.254", "http://[::1]:9", "http://localhost"],
)
async def test_provider_urls_on_private_networks_are_refused_before_sending(
    db: Database, twilio: FakeTwilio, meta: FakeMeta, where: str
) -> None:
    settings = Settings(
        database_url=db.url,
        secret_key=SECRET,
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        twilio_from="+97235551234",
        twilio_api_url=twilio.base_url if where == "loopback" else where,
        whatsapp_access_token=meta.access_token,
        whatsapp_phone_number_id=meta.phone_number_id,
        whatsapp_api_url=meta.base_url if where == "loopback" else where,
    )  # allow_private_provider_urls is left off, as in production
    await queue_both(db)
    senders = Senders(settings)
    report = await send_due_notifications(db, senders, now=NOW)
    await senders.aclose()
    assert report.sent == 0 and report.retried + report.failed == 2, report
    assert twilio.requests == [] and meta.requests == []  # nothing left the machine
    async with db.transaction(write=False) as session:
        errors = [n.last_error for n in await session.scalars(select(Notification))]
    assert all("not a public address" in (error or "") for error in errors), errors


async def test_media_links_in_incoming_messages_are_never_fetched(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    """The console keeps a media message's caption, and never follows the link a message (or
    someone forging one) names, so a webhook cannot make it call an inside address."""
    async with FakeHttpServer([]) as inside:  # any request here would be recorded
        async with db.transaction() as session:
            business = await make_business(session)
            await add_line(session, business, "sms", "+97235551234")
            await add_line(session, business, "whatsapp", "106540352242922")
        fields = twilio_sms_params(
            from_="+972542345678", to="+97235551234", body="photo", account_sid="AC" + "0" * 32
        )
        fields |= {"NumMedia": "1", "MediaUrl0": f"{inside.base_url}/media/1",
                   "MediaContentType0": "image/jpeg"}  # fmt: skip
        sms = signed_twilio_form(
            "https://console.example/intake/twilio/sms", settings.twilio_webhook_token, fields
        )
        answer = await client.post(sms.path, content=sms.body, headers=sms.headers)
        assert answer.status_code in (200, 201), answer.text
        image = {
            "from": "972523456789",
            "id": "wamid." + uuid.uuid4().hex,
            "timestamp": "1700000000",
            "type": "image",
            "image": {"caption": "תמונה", "link": f"{inside.base_url}/media/2", "id": "1"},
        }
        body = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "97235551234",
                             "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "דנה"}, "wa_id": "972523456789"}],
                "messages": [image],
            }}]}],
        }  # fmt: skip
        whatsapp = signed_meta_body(settings.whatsapp_webhook_secret, body)
        answer = await client.post(
            "/intake/whatsapp", content=whatsapp.body, headers=whatsapp.headers
        )
        assert answer.status_code in (200, 201), answer.text
        assert inside.requests == []


async def boom(request: Request) -> Response:
    raise RuntimeError(f"connection to postgresql://mazkira:{DB_PASSWORD}@db.internal/x failed")


async def test_no_secret_reaches_a_log_line_or_an_error_page(
    app: Starlette, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """At the level the console logs at (INFO), through sign-in, the API, intake, a refused
    form and an unhandled error (a route added for the test, raising with a password inside)."""
    app.router.routes.append(Route("/__boom", boom, methods=["GET", "POST"]))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    async with db.transaction() as session:
        business = await make_business(session, slug="levi")
        owner = await make_user(session, "owner", business)
        made = await api_tokens.create_token(session, owner, "site", now=NOW)
    caplog.set_level(logging.INFO)
    await sign_in(client, owner.email, "wrong-password-123")
    await sign_in(client, owner.email)
    cookie = client.cookies["mazkira_session"]
    token = await csrf_token(client, "/portal")
    pages = [
        await client.get("/__boom"),
        await client.get("/__boom", headers={"Accept": "application/json"}),
        await client.get("/__boom", headers={"HX-Request": "true"}),
        await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {made.secret}x"}),
        await client.post("/intake/levi/form", json={"phone": "1"},
                          headers={"X-Intake-Key": business.intake_key + "x"}),
        await client.post("/portal/availability", data={"csrf_token": token + "x"}),
    ]  # fmt: skip
    api = await client.get("/api/v1/leads", headers={"Authorization": f"Bearer {made.secret}"})
    assert api.status_code == 200
    assert [p.status_code for p in pages[:3]] == [500, 500, 500]
    secrets = [
        SECRET, DB_PASSWORD, PASSWORD, "wrong-password-123", made.secret, business.intake_key,
        cookie, cookie.split(".")[0],
    ]  # fmt: skip
    for page in pages:  # (the signed-in page carries her own CSRF token, as every page does)
        for secret in secrets:
            assert secret not in page.text, (page.request.url, secret[:6])
        assert "Traceback" not in page.text and "RuntimeError" not in page.text
    logged = "\n".join(
        record.getMessage() + (caplog.text if record.exc_info else "") for record in caplog.records
    )
    assert "unhandled error on GET /__boom" in logged  # the failure itself is logged …
    for secret in [*secrets, token]:
        if secret != DB_PASSWORD:  # … with the exception's own text, not ours to filter
            assert secret not in logged, secret[:6]
    await client.aclose()


async def test_the_access_log_keeps_no_signed_link(
    app: Starlette, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Set-password, task, survey and calendar links are the proof of who calls them: the
    server's access log names the route, not the token."""
    async with db.transaction() as session:
        business = await make_business(session)
        user = await make_user(session, "owner", business)
    tokens = {
        "invite": password_link_token(SECRET, user),
        "ack": "ImRvbmUi.forged-but-long-enough-to-look-real",
        "survey": "WyJhYmMiLDFd.another-token-that-should-not-be-logged",
        "calendar": feed_token(SECRET, business) + ".ics",
    }
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with served(app, access_log=True) as url, httpx.AsyncClient(base_url=url) as http:
        for prefix, token in tokens.items():
            await http.get(f"/{prefix}/{token}?x=1")
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(lines) == 4, lines
    for prefix, token in tokens.items():
        assert any(f"/{prefix}/[redacted]?x=1" in line for line in lines), (prefix, lines)
        assert all(token.removesuffix(".ics") not in line for line in lines), prefix
