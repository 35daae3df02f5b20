"""Webhook signatures: known answers, and every way a forged or stale request must fail."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs

import pytest

from console.intake.signatures import (
    mailgun_signature,
    meta_signature,
    twilio_signature,
    verify_mailgun,
    verify_meta,
    verify_twilio,
)
from tests import fakes

# Twilio's own vector (twilio-python's and twilio-node's request validator tests).
TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS: dict[str, str | list[str]] = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
TWILIO_EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_twilio_known_answer() -> None:
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS) == TWILIO_EXPECTED
    assert verify_twilio(TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED)


def test_twilio_repeated_names_sign_their_values_sorted() -> None:
    """Twilio's vector for Digits=5678&Digits=1234: values sorted, as its validators do."""
    params: dict[str, str | list[str]] = {
        "Sid": "CA123",
        "SidAccount": "AC123",
        "Digits": ["5678", "1234"],
    }
    assert twilio_signature(TWILIO_TOKEN, TWILIO_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        # Twilio's vectors for URLs it signed with the default port spelled out.
        (TWILIO_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),
        (TWILIO_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        (TWILIO_URL.replace(".com", ".com:443"), TWILIO_EXPECTED),
    ],
)
def test_twilio_default_port_written_or_not(url: str, signature: str) -> None:
    assert verify_twilio(TWILIO_TOKEN, url, TWILIO_PARAMS, signature)


def test_twilio_other_ports_are_not_interchangeable() -> None:
    assert not verify_twilio(
        TWILIO_TOKEN, TWILIO_URL.replace(".com", ".com:8443"), TWILIO_PARAMS, TWILIO_EXPECTED
    )


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("54321", TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED),
        (TWILIO_TOKEN, TWILIO_URL.replace("foo=1", "foo=2"), TWILIO_PARAMS, TWILIO_EXPECTED),
        (TWILIO_TOKEN, "https://mycompany.com/myapp.php", TWILIO_PARAMS, TWILIO_EXPECTED),
        (TWILIO_TOKEN, TWILIO_URL, {**TWILIO_PARAMS, "Digits": "1235"}, TWILIO_EXPECTED),
        (TWILIO_TOKEN, TWILIO_URL, {**TWILIO_PARAMS, "Extra": ""}, TWILIO_EXPECTED),
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, TWILIO_EXPECTED.lower()),
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, ""),
        (TWILIO_TOKEN, TWILIO_URL, TWILIO_PARAMS, None),
        ("", TWILIO_URL, TWILIO_PARAMS, twilio_signature("", TWILIO_URL, TWILIO_PARAMS)),
    ],
    ids=[
        "wrong token",
        "tampered query",
        "query dropped",
        "tampered param",
        "added param",
        "mangled signature",
        "empty header",
        "missing header",
        "empty secret",
    ],
)
def test_twilio_refuses(
    token: str, url: str, params: dict[str, str | list[str]], signature: str | None
) -> None:
    assert not verify_twilio(token, url, params, signature)


APP_SECRET = "meta-app-secret"
META_BODY = b'{"object":"whatsapp_business_account","entry":[{"id":"1"}]}'


def test_meta_computed_vector() -> None:
    expected = hmac.new(APP_SECRET.encode(), META_BODY, hashlib.sha256).hexdigest()
    assert meta_signature(APP_SECRET, META_BODY) == f"sha256={expected}"
    assert meta_signature(APP_SECRET, b"") == (
        "sha256=" + hmac.new(b"meta-app-secret", b"", hashlib.sha256).hexdigest()
    )
    assert verify_meta(APP_SECRET, META_BODY, f"sha256={expected}")


@pytest.mark.parametrize(
    ("secret", "body", "header"),
    [
        (APP_SECRET, META_BODY + b" ", meta_signature(APP_SECRET, META_BODY)),
        (APP_SECRET, META_BODY.replace(b'"1"', b'"2"'), meta_signature(APP_SECRET, META_BODY)),
        ("other", META_BODY, meta_signature(APP_SECRET, META_BODY)),
        (APP_SECRET, META_BODY, meta_signature(APP_SECRET, META_BODY).removeprefix("sha256=")),
        (APP_SECRET, META_BODY, "sha1=" + meta_signature(APP_SECRET, META_BODY)[7:]),
        (APP_SECRET, META_BODY, "sha256="),
        (APP_SECRET, META_BODY, ""),
        (APP_SECRET, META_BODY, None),
        ("", META_BODY, meta_signature("", META_BODY)),
    ],
    ids=[
        "body with a byte added",
        "tampered body",
        "wrong secret",
        "no prefix",
        "sha1 prefix",
        "prefix only",
        "empty header",
        "missing header",
        "empty secret",
    ],
)
def test_meta_refuses(secret: str, body: bytes, header: str | None) -> None:
    assert not verify_meta(secret, body, header)


SIGNING_KEY = "key-mailgun-signing"
NOW = 1_700_000_000.0
STAMP = "1700000000"
TOKEN = "a" * 50


def test_mailgun_computed_vector() -> None:
    expected = hmac.new(SIGNING_KEY.encode(), (STAMP + TOKEN).encode(), hashlib.sha256).hexdigest()
    assert mailgun_signature(SIGNING_KEY, STAMP, TOKEN) == expected
    assert verify_mailgun(SIGNING_KEY, STAMP, TOKEN, expected, now=NOW)


def test_mailgun_accepts_a_clock_skew_inside_the_window() -> None:
    signature = mailgun_signature(SIGNING_KEY, STAMP, TOKEN)
    assert verify_mailgun(SIGNING_KEY, STAMP, TOKEN, signature, now=NOW + 299)
    assert verify_mailgun(SIGNING_KEY, STAMP, TOKEN, signature, now=NOW - 299)


def _signed(stamp: str, token: str = TOKEN) -> str:
    return mailgun_signature(SIGNING_KEY, stamp, token)


@pytest.mark.parametrize(
    ("key", "stamp", "token", "signature", "now"),
    [
        (SIGNING_KEY, STAMP, TOKEN, _signed(STAMP), NOW + 301),
        (SIGNING_KEY, STAMP, TOKEN, _signed(STAMP), NOW - 301),
        (SIGNING_KEY, "1700000001", TOKEN, _signed(STAMP), NOW),
        (SIGNING_KEY, STAMP, "b" * 50, _signed(STAMP), NOW),
        ("other-key", STAMP, TOKEN, _signed(STAMP), NOW),
        (SIGNING_KEY, "soon", TOKEN, _signed("soon"), NOW),
        (SIGNING_KEY, "nan", TOKEN, _signed("nan"), NOW),
        (SIGNING_KEY, "inf", TOKEN, _signed("inf"), NOW),
        (SIGNING_KEY, "", TOKEN, _signed(""), NOW),
        (SIGNING_KEY, None, TOKEN, _signed(STAMP), NOW),
        (SIGNING_KEY, STAMP, None, _signed(STAMP), NOW),
        (SIGNING_KEY, STAMP, TOKEN, None, NOW),
        (SIGNING_KEY, STAMP, TOKEN, _signed(STAMP).upper(), NOW),
        ("", STAMP, TOKEN, mailgun_signature("", STAMP, TOKEN), NOW),
    ],
    ids=[
        "stale",
        "from the future",
        "tampered timestamp",
        "tampered token",
        "wrong key",
        "non-numeric timestamp",
        "nan timestamp",
        "infinite timestamp",
        "empty timestamp",
        "missing timestamp",
        "missing token",
        "missing signature",
        "upper-case hex",
        "empty secret",
    ],
)
def test_mailgun_refuses(
    key: str, stamp: str | None, token: str | None, signature: str | None, now: float
) -> None:
    assert not verify_mailgun(key, stamp, token, signature, now=now)


def test_mailgun_max_age_is_adjustable() -> None:
    signature = _signed(STAMP)
    assert not verify_mailgun(
        SIGNING_KEY, STAMP, TOKEN, signature, now=NOW + 61, max_age_seconds=60
    )
    assert verify_mailgun(SIGNING_KEY, STAMP, TOKEN, signature, now=NOW + 59, max_age_seconds=60)


# The builders later webhook tests use must sign exactly as the providers do.


def test_twilio_sms_webhook_builder_signs_for_the_public_url() -> None:
    url = "https://console.example/intake/twilio/sms?business=7"
    fields = fakes.twilio_sms_params(
        from_="+972527654321", to="+97235551234", body="שלום", account_sid=fakes.new_sid("AC")
    )
    request = fakes.signed_twilio_form(url, "token", fields)

    assert set(request.fields) == {
        "ToCountry", "ToState", "SmsMessageSid", "NumMedia", "ToCity", "FromZip", "SmsSid",
        "FromState", "SmsStatus", "FromCity", "Body", "FromCountry", "To", "ToZip",
        "NumSegments", "MessageSid", "AccountSid", "From", "ApiVersion",
    }  # fmt: skip
    assert request.fields["FromCountry"] == "IL"
    assert request.path == "/intake/twilio/sms?business=7"
    signature = request.headers["X-Twilio-Signature"]
    assert verify_twilio("token", url, request.fields, signature)
    # As a receiver parses the body; blank fields (FromCity=…) are signed too, so keep them.
    parsed: dict[str, str | list[str]] = {**parse_qs(request.body.decode(), keep_blank_values=True)}
    assert verify_twilio("token", url, parsed, signature)
    dropped: dict[str, str | list[str]] = {**parse_qs(request.body.decode())}
    assert not verify_twilio("token", url, dropped, signature)
    assert not verify_twilio("token", url.replace("7", "8"), request.fields, signature)


def test_twilio_voice_and_status_builders_sign() -> None:
    account = fakes.new_sid("AC")
    voice = fakes.twilio_voice_params(from_="+972527654321", to="+97235551234", account_sid=account)
    assert {"Called", "Caller", "CallSid", "CallStatus", "Direction", "CalledCountry"} <= set(voice)
    assert voice["Direction"] == "inbound"
    status = fakes.twilio_status_params(
        message_sid=fakes.new_sid("SM"),
        status="failed",
        from_="+97235551234",
        to="+972527654321",
        account_sid=account,
    )
    assert status["MessageStatus"] == "failed"
    assert status["ErrorCode"] == "30003"
    for fields in (voice, status):
        request = fakes.signed_twilio_form("https://c.example/hook", "token", fields)
        assert verify_twilio(
            "token", request.url, request.fields, request.headers["X-Twilio-Signature"]
        )


def test_meta_builders_sign_the_exact_bytes() -> None:
    payload = fakes.meta_text_message_payload(
        from_wa_id="972527654321", body="שלום / hello", profile_name="דנה"
    )
    request = fakes.signed_meta_body("secret", payload)

    assert b"\\u05e9" in request.body and b"\\/" in request.body  # escaped, as Meta writes
    assert json.loads(request.body) == payload
    value = payload["entry"][0]["changes"][0]["value"]
    assert value["messages"][0]["text"] == {"body": "שלום / hello"}
    assert value["messages"][0]["id"].startswith("wamid.")
    assert verify_meta("secret", request.body, request.headers["X-Hub-Signature-256"])
    reserialised = json.dumps(payload).encode()
    assert not verify_meta("secret", reserialised, request.headers["X-Hub-Signature-256"])

    failed = fakes.meta_status_payload(
        message_id=value["messages"][0]["id"], status="failed", recipient_id="972527654321"
    )
    [update] = failed["entry"][0]["changes"][0]["value"]["statuses"]
    assert update["errors"][0]["code"] == 131047


def test_mailgun_builder_signs() -> None:
    request = fakes.mailgun_forward_form(
        "https://c.example/intake/mail",
        "key",
        sender="dana@example.com",
        recipient="biz-7@in.mazkira.example",
        subject="שאלה על מחיר",
        body_plain="כמה עולה?",
        body_html="<p>כמה עולה?</p>",
        timestamp=int(NOW),
    )
    fields = request.fields
    assert {"sender", "recipient", "subject", "from", "body-plain", "body-html"} <= set(fields)
    assert {"stripped-text", "Message-Id", "timestamp", "token", "signature"} <= set(fields)
    assert len(fields["token"]) == 50
    assert verify_mailgun(
        "key", fields["timestamp"], fields["token"], fields["signature"], now=NOW + 10
    )
