"""Outbound adapters against local fakes that speak Twilio's, Meta's and SMTP's formats."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from console.channels.mail import SmtpMail
from console.channels.providers import (
    META_REENGAGEMENT_CODE,
    MetaWhatsApp,
    ProviderError,
    SendResult,
    TwilioMessages,
    check_public_url,
    check_public_url_async,
)
from tests.fakes import FakeMeta, FakeSmtp, FakeTwilio, free_port

CUSTOMER = "+972527654321"
AGENCY_NUMBER = "+97235551234"


@pytest.fixture(scope="module")
async def twilio_server() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def twilio(twilio_server: FakeTwilio) -> FakeTwilio:
    twilio_server.reset()
    return twilio_server


@pytest.fixture(scope="module")
async def meta_server() -> AsyncIterator[FakeMeta]:
    async with FakeMeta() as fake:
        yield fake


@pytest.fixture
def meta(meta_server: FakeMeta) -> FakeMeta:
    meta_server.reset()
    return meta_server


@pytest.fixture(scope="module")
async def smtp_server() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp(username="agency", password="p@ss:w/rd") as fake:
        yield fake


@pytest.fixture
def smtp(smtp_server: FakeSmtp) -> FakeSmtp:
    smtp_server.reset()
    return smtp_server


def twilio_adapter(fake: FakeTwilio, *, status_callback: str | None = None) -> TwilioMessages:
    return TwilioMessages(
        fake.account_sid,
        fake.auth_token,
        base_url=fake.base_url,
        status_callback=status_callback,
        allow_private=True,
    )


def meta_adapter(fake: FakeMeta) -> MetaWhatsApp:
    return MetaWhatsApp(
        fake.access_token, fake.phone_number_id, base_url=fake.base_url, allow_private=True
    )


# --------------------------------------------------------------------------- Twilio


async def test_twilio_sends_an_sms(twilio: FakeTwilio) -> None:
    result = await twilio_adapter(twilio).send_sms(
        CUSTOMER, AGENCY_NUMBER, "שלום, חזרנו אליך", idempotency_key="lead-1:sms"
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", result.provider_id)
    assert result == SendResult(result.provider_id, "queued")
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.form() == {
        "To": [CUSTOMER],
        "From": [AGENCY_NUMBER],
        "Body": ["שלום, חזרנו אליך"],
    }
    credentials = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {credentials}"
    assert request.headers["i-twilio-idempotency-token"] == "lead-1:sms"
    [message] = twilio.messages
    assert message["sid"] == result.provider_id
    assert message["body"] == "שלום, חזרנו אליך"


async def test_twilio_asks_for_status_callbacks_when_configured(twilio: FakeTwilio) -> None:
    adapter = twilio_adapter(twilio, status_callback="https://console.example/intake/twilio/status")
    await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert twilio.requests[0].form()["StatusCallback"] == [
        "https://console.example/intake/twilio/status"
    ]


async def test_twilio_whatsapp_uses_whatsapp_addresses(twilio: FakeTwilio) -> None:
    result = await twilio_adapter(twilio).send_whatsapp(
        CUSTOMER, f"whatsapp:{AGENCY_NUMBER}", "hi", idempotency_key="k"
    )
    form = twilio.requests[0].form()
    assert form["To"] == [f"whatsapp:{CUSTOMER}"]
    assert form["From"] == [f"whatsapp:{AGENCY_NUMBER}"]
    assert result.status == "queued"


async def test_twilio_retry_with_the_same_key_sends_once(twilio: FakeTwilio) -> None:
    adapter = twilio_adapter(twilio)
    first = await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="lead-2:sms")
    again = await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="lead-2:sms")
    other = await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="lead-3:sms")

    assert again.provider_id == first.provider_id
    assert other.provider_id != first.provider_id
    assert len(twilio.requests) == 3
    assert len(twilio.messages) == 2


async def test_twilio_server_error_is_retryable(twilio: FakeTwilio) -> None:
    adapter = twilio_adapter(twilio)
    twilio.fail_next(status=500)
    with pytest.raises(ProviderError) as failed:
        await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert failed.value.retryable
    assert failed.value.http_status == 500
    assert failed.value.code == 20500

    result = await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert [message["sid"] for message in twilio.messages] == [result.provider_id]


async def test_twilio_rate_limit_is_retryable(twilio: FakeTwilio) -> None:
    twilio.fail_next(status=429)
    with pytest.raises(ProviderError) as failed:
        await twilio_adapter(twilio).send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert failed.value.retryable
    assert failed.value.code == 20429


async def test_twilio_bad_request_is_final_with_twilios_message(twilio: FakeTwilio) -> None:
    with pytest.raises(ProviderError) as failed:
        await twilio_adapter(twilio).send_sms("+9725", AGENCY_NUMBER, "hi", idempotency_key="k")
    assert not failed.value.retryable
    assert failed.value.code == 21211
    assert failed.value.http_status == 400
    assert failed.value.message == "The 'To' number +9725 is not a valid phone number."
    assert twilio.messages == []


async def test_twilio_queued_bad_request_is_final(twilio: FakeTwilio) -> None:
    twilio.fail_next(status=400, code=21610, message="Attempt to send to unsubscribed recipient")
    with pytest.raises(ProviderError) as failed:
        await twilio_adapter(twilio).send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert not failed.value.retryable
    assert (failed.value.code, str(failed.value)) == (
        21610,
        "Attempt to send to unsubscribed recipient",
    )


async def test_twilio_wrong_credentials_are_final(twilio: FakeTwilio) -> None:
    adapter = TwilioMessages(
        twilio.account_sid, "not-the-token", base_url=twilio.base_url, allow_private=True
    )
    with pytest.raises(ProviderError) as failed:
        await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert (failed.value.retryable, failed.value.http_status, failed.value.code) == (
        False,
        401,
        20003,
    )


async def test_twilio_timeout_is_retryable(twilio: FakeTwilio) -> None:
    twilio.delay = 0.3
    async with httpx.AsyncClient(timeout=0.05) as http:
        adapter = TwilioMessages(
            twilio.account_sid,
            twilio.auth_token,
            base_url=twilio.base_url,
            http=http,
            allow_private=True,
        )
        with pytest.raises(ProviderError) as failed:
            await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert failed.value.retryable
    assert "timed out" in failed.value.message


async def test_unreachable_provider_is_retryable() -> None:
    adapter = TwilioMessages(
        "AC" + "0" * 32, "token", base_url=f"http://127.0.0.1:{free_port()}", allow_private=True
    )
    with pytest.raises(ProviderError) as failed:
        await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert failed.value.retryable
    assert failed.value.http_status is None


async def test_shared_client_is_used_and_left_open(twilio: FakeTwilio) -> None:
    async with httpx.AsyncClient(headers={"X-Test": "shared"}) as http:
        adapter = TwilioMessages(
            twilio.account_sid,
            twilio.auth_token,
            base_url=twilio.base_url,
            http=http,
            allow_private=True,
        )
        await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "one", idempotency_key="a")
        await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "two", idempotency_key="b")
        assert not http.is_closed
    assert [request.headers["x-test"] for request in twilio.requests] == ["shared", "shared"]


# --------------------------------------------------------------------------- Meta


async def test_meta_sends_a_text(meta: FakeMeta) -> None:
    result = await meta_adapter(meta).send_text(
        "+972 52-765-4321", "שלום! איך אפשר לעזור?", idempotency_key="lead-1:wa"
    )

    assert result.provider_id.startswith("wamid.")
    assert result.status == "accepted"
    [request] = meta.requests
    assert request.path == f"/v21.0/{meta.phone_number_id}/messages"
    assert request.headers["authorization"] == f"Bearer {meta.access_token}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "972527654321",
        "type": "text",
        "text": {"preview_url": False, "body": "שלום! איך אפשר לעזור?"},
    }


async def test_meta_sends_a_template(meta: FakeMeta) -> None:
    result = await meta_adapter(meta).send_template(
        CUSTOMER, "lead_follow_up", "he", ["דנה", "מחר ב-10:00"], idempotency_key="lead-1:tpl"
    )

    assert result.provider_id.startswith("wamid.")
    assert result.status == "accepted"
    assert meta.requests[0].json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "972527654321",
        "type": "template",
        "template": {
            "name": "lead_follow_up",
            "language": {"code": "he"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "דנה"},
                        {"type": "text", "text": "מחר ב-10:00"},
                    ],
                }
            ],
        },
    }


async def test_meta_template_without_parameters_has_no_components(meta: FakeMeta) -> None:
    await meta_adapter(meta).send_template(
        CUSTOMER, "hello_world", "en_US", [], idempotency_key="k"
    )
    assert "components" not in meta.requests[0].json()["template"]


async def test_meta_reengagement_error_is_recognisable(meta: FakeMeta) -> None:
    meta.fail_next(code=131047)
    with pytest.raises(ProviderError) as failed:
        await meta_adapter(meta).send_text(CUSTOMER, "hi", idempotency_key="k")
    assert failed.value.code == META_REENGAGEMENT_CODE
    assert not failed.value.retryable
    assert failed.value.message.startswith("(#131047) Re-engagement message")
    assert "24 hours" in failed.value.message


async def test_meta_throughput_limit_is_retryable_although_http_400(meta: FakeMeta) -> None:
    meta.fail_next(code=130429)
    with pytest.raises(ProviderError) as failed:
        await meta_adapter(meta).send_text(CUSTOMER, "hi", idempotency_key="k")
    assert (failed.value.retryable, failed.value.http_status, failed.value.code) == (
        True,
        400,
        130429,
    )


async def test_meta_server_error_is_retryable(meta: FakeMeta) -> None:
    meta.fail_next(code=2, status=503, message="Service temporarily unavailable")
    with pytest.raises(ProviderError) as failed:
        await meta_adapter(meta).send_text(CUSTOMER, "hi", idempotency_key="k")
    assert failed.value.retryable
    assert failed.value.message == "Service temporarily unavailable"


async def test_meta_bad_token_is_final(meta: FakeMeta) -> None:
    adapter = MetaWhatsApp(
        "expired", meta.phone_number_id, base_url=meta.base_url, allow_private=True
    )
    with pytest.raises(ProviderError) as failed:
        await adapter.send_text(CUSTOMER, "hi", idempotency_key="k")
    assert (failed.value.retryable, failed.value.code) == (False, 190)
    assert meta.messages == []


# --------------------------------------------------------------------------- SMTP


async def test_smtp_sends_hebrew_intact(smtp: FakeSmtp) -> None:
    mail = SmtpMail(smtp.url("agency@mazkira.example"))
    result = await mail.send(
        "owner@business.example",
        "ליד חדש: דנה כהן",
        "דנה ביקשה שיחזרו אליה מחר.",
        html="<p>דנה ביקשה שיחזרו אליה <b>מחר</b>.</p>",
        idempotency_key="lead-7:owner-mail",
        reply_to="desk@mazkira.example",
    )

    assert result.status == "sent"
    [received] = smtp.received
    assert received.envelope_from == "agency@mazkira.example"
    assert received.envelope_to == ["owner@business.example"]
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 on the wire
    assert received.subject == "ליד חדש: דנה כהן"
    assert received.text.strip() == "דנה ביקשה שיחזרו אליה מחר."
    assert received.html.strip() == "<p>דנה ביקשה שיחזרו אליה <b>מחר</b>.</p>"
    assert received.header("Reply-To") == "desk@mazkira.example"
    assert received.header("Message-ID") == result.provider_id


async def test_smtp_message_id_follows_the_idempotency_key(smtp: FakeSmtp) -> None:
    mail = SmtpMail(smtp.url())
    first = await mail.send("a@example.com", "s", "t", idempotency_key="lead-1:mail")
    retried = await SmtpMail(smtp.url()).send(
        "a@example.com", "s", "t", idempotency_key="lead-1:mail"
    )
    other = await mail.send("a@example.com", "s", "t", idempotency_key="lead-2:mail")

    assert first.provider_id == retried.provider_id != other.provider_id
    assert re.fullmatch(r"<[0-9a-f]{40}@example\.com>", first.provider_id)
    assert [mail.header("Message-ID") for mail in smtp.received] == [
        first.provider_id,
        first.provider_id,
        other.provider_id,
    ]


async def test_smtp_temporary_refusal_is_retryable(smtp: FakeSmtp) -> None:
    smtp.refuse_next(reply="451 4.3.0 Mailbox busy, try later")
    with pytest.raises(ProviderError) as failed:
        await SmtpMail(smtp.url()).send("a@example.com", "s", "t", idempotency_key="k")
    assert (failed.value.retryable, failed.value.code) == (True, 451)
    assert smtp.received == []


async def test_smtp_permanent_refusal_is_final(smtp: FakeSmtp) -> None:
    smtp.refuse_next(reply="550 5.1.1 No such user")
    with pytest.raises(ProviderError) as failed:
        await SmtpMail(smtp.url()).send("a@example.com", "s", "t", idempotency_key="k")
    assert (failed.value.retryable, failed.value.code) == (False, 550)
    assert "No such user" in failed.value.message


async def test_smtp_wrong_password_is_final(smtp: FakeSmtp) -> None:
    url = smtp.url().replace("p%40ss%3Aw%2Frd", "wrong")
    with pytest.raises(ProviderError) as failed:
        await SmtpMail(url).send("a@example.com", "s", "t", idempotency_key="k")
    assert (failed.value.retryable, failed.value.code) == (False, 535)


async def test_smtp_header_injection_is_refused_before_sending(smtp: FakeSmtp) -> None:
    with pytest.raises(ProviderError) as failed:
        await SmtpMail(smtp.url()).send(
            "a@example.com", "hello\r\nBcc: victim@example.com", "t", idempotency_key="k"
        )
    assert not failed.value.retryable
    assert smtp.received == []


async def test_smtp_unreachable_relay_is_retryable() -> None:
    mail = SmtpMail(f"smtp://127.0.0.1:{free_port()}?from=agency@example.com")
    with pytest.raises(ProviderError) as failed:
        await mail.send("a@example.com", "s", "t", idempotency_key="k")
    assert failed.value.retryable


@pytest.mark.parametrize(
    ("url", "host", "port", "start_tls", "use_tls", "username", "password"),
    [
        ("smtp://relay?from=a@example.com", "relay", 25, False, False, None, None),
        ("smtp+starttls://u:p@smtp.example.com?from=a@example.com", "smtp.example.com", 587,
         True, False, "u", "p"),
        ("smtps://u%40x:p%2Fq@smtp.example.com:2465?from=a@example.com", "smtp.example.com",
         2465, False, True, "u@x", "p/q"),
    ],
)  # fmt: skip
def test_smtp_url_is_read(
    url: str,
    host: str,
    port: int,
    start_tls: bool,
    use_tls: bool,
    username: str | None,
    password: str | None,
) -> None:
    mail = SmtpMail(url)
    assert (mail.host, mail.port, mail.start_tls, mail.use_tls) == (host, port, start_tls, use_tls)
    assert (mail.username, mail.password, mail.sender) == (username, password, "a@example.com")


@pytest.mark.parametrize(
    "url",
    ["smtp://relay", "smtp://relay?from=nobody", "http://relay?from=a@b.c", "smtp://?from=a@b.c"],
)
def test_smtp_url_must_be_complete(url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        SmtpMail(url)


# --------------------------------------------------------------------------- URL guard

REFUSED = [
    "http://127.0.0.1",
    "http://127.0.0.1:8080/hook",
    "http://10.0.0.5",
    "http://172.16.3.4",
    "http://192.168.1.1",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1",
    "http://0.0.0.0",
    "http://224.0.0.1",
    "http://[::1]",
    "http://[::]",
    "http://[fe80::1]",
    "http://[fd00::1]",
    "http://[ff02::1]",
    "http://[::ffff:127.0.0.1]",
    "http://localhost",
    "http://localhost:8000",
    "http://api.localhost",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_private_hosts_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not a public address"):
        check_public_url(url, allow_private=False)
    with pytest.raises(ValueError, match="not a public address"):
        await check_public_url_async(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://x", "file:///etc/passwd", "gopher://x", "x", "http://"])
async def test_only_http_urls_are_accepted(url: str) -> None:
    for allow_private in (False, True):
        with pytest.raises(ValueError):
            check_public_url(url, allow_private=allow_private)
        with pytest.raises(ValueError):
            await check_public_url_async(url, allow_private=allow_private)


@pytest.mark.parametrize(
    "url",
    ["https://93.184.216.34", "http://93.184.216.34:8080/x", "https://[2606:4700::6810:84e5]"],
)
async def test_public_literals_are_allowed_without_resolving(url: str) -> None:
    check_public_url(url, allow_private=False)
    await check_public_url_async(url, allow_private=False)


def test_private_hosts_are_allowed_when_asked() -> None:
    check_public_url("http://127.0.0.1:8000", allow_private=True)
    check_public_url("http://localhost", allow_private=True)


async def test_adapter_refuses_a_private_base_url_before_sending(twilio: FakeTwilio) -> None:
    adapter = TwilioMessages(twilio.account_sid, twilio.auth_token, base_url=twilio.base_url)
    with pytest.raises(ValueError, match="not a public address"):
        await adapter.send_sms(CUSTOMER, AGENCY_NUMBER, "hi", idempotency_key="k")
    assert twilio.requests == []


def test_adapter_refuses_a_wrong_scheme_at_once() -> None:
    with pytest.raises(ValueError, match="only http and https"):
        MetaWhatsApp("token", "1", base_url="ftp://graph.example")
