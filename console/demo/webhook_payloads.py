"""The webhooks the providers send us, built as they build them and signed as they sign them.

Twilio posts form fields signed over the public URL it calls (`X-Twilio-Signature`), Meta posts
Cloud API JSON signed over its exact bytes (`X-Hub-Signature-256`), and a Mailgun route forwards
a mail as form fields with a signed timestamp and token. The shapes follow the providers'
documentation. `mazkira simulate` sends them to a running console; the tests post them in-process.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from console.intake.signatures import mailgun_signature, meta_signature, twilio_signature

TWILIO_API_VERSION = "2010-04-01"
META_ERROR_CODES_URL = (
    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
)


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 lower-case hex digits (AC…, SM…, CA…, MG…)."""
    return prefix + secrets.token_hex(16)


# Graph API errors by code: (HTTP status, title, details), as the send endpoint answers them.
META_ERRORS: dict[int, tuple[int, str, str | None]] = {
    131047: (
        400,
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer "
        "last replied to this number.",
    ),
    130429: (400, "Rate limit hit", "Cloud API message throughput has been reached."),
    131000: (500, "Something went wrong", "Something went wrong"),
    100: (400, "Invalid parameter", None),
}


def wamid(wa_id: str) -> str:
    """A WhatsApp message id as Meta makes them: "wamid." and base64 of a small binary record."""
    reference = secrets.token_hex(9).upper().encode()
    record = (
        b"\x1c\x18"
        + bytes([len(wa_id)])
        + wa_id.encode()
        + b"\x15\x02\x00\x11\x18"
        + bytes([len(reference)])
        + reference
        + b"\x00"
    )
    return "wamid." + base64.b64encode(record).decode()


@dataclass(frozen=True)
class SignedForm:
    """A form POST as the provider sends it: post `body` (or `fields`) with `headers` to `url`."""

    url: str
    fields: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        return urlencode(self.fields).encode()

    @property
    def path(self) -> str:
        """The path and query to request from a test client."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class SignedJson:
    """A JSON POST as Meta sends it: the exact bytes that were signed, and the headers."""

    payload: dict[str, Any]
    body: bytes
    headers: dict[str, str]


COUNTRY_PREFIXES = {"+972": "IL", "+1": "US", "+44": "GB"}


def _country(number: str) -> str:
    number = number.removeprefix("whatsapp:")
    return next((c for prefix, c in COUNTRY_PREFIXES.items() if number.startswith(prefix)), "")


def _geography(prefix: str, number: str) -> dict[str, str]:
    """Twilio's lookup of a number's place; outside North America only the country is known."""
    return {
        f"{prefix}City": "",
        f"{prefix}State": "",
        f"{prefix}Zip": "",
        f"{prefix}Country": _country(number),
    }


def _twilio_message(
    *, sid: str, from_: str, to: str, body: str, account_sid: str
) -> dict[str, str]:
    """The fields of every incoming message Twilio posts, SMS or WhatsApp."""
    return {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": TWILIO_API_VERSION,
    }


def twilio_sms_params(
    *,
    from_: str,
    to: str,
    body: str,
    account_sid: str,
    message_sid: str | None = None,
    messaging_service_sid: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The fields Twilio posts to the messaging webhook for an incoming SMS."""
    sid = message_sid or new_sid("SM")
    fields = {
        **_geography("To", to),
        **_geography("From", from_),
        **_twilio_message(sid=sid, from_=from_, to=to, body=body, account_sid=account_sid),
    }
    if messaging_service_sid:
        fields["MessagingServiceSid"] = messaging_service_sid
    return {**fields, **(extra or {})}


def twilio_whatsapp_params(
    *,
    from_: str,
    to: str,
    body: str,
    account_sid: str,
    profile_name: str,
    message_sid: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The fields Twilio posts for an incoming WhatsApp message (whatsapp:+… addresses)."""
    sid = message_sid or new_sid("SM")
    fields = {
        **_twilio_message(sid=sid, from_=from_, to=to, body=body, account_sid=account_sid),
        "ProfileName": profile_name,
        "MessageType": "text",
        "WaId": from_.removeprefix("whatsapp:").removeprefix("+"),
        "ReferralNumMedia": "0",
    }
    return {**fields, **(extra or {})}


def twilio_voice_params(
    *,
    from_: str,
    to: str,
    account_sid: str,
    call_sid: str | None = None,
    call_status: str = "ringing",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The fields Twilio posts to the voice webhook for an incoming call."""
    fields = {
        "Called": to,
        **_geography("Called", to),
        **_geography("To", to),
        "Caller": from_,
        **_geography("Caller", from_),
        **_geography("From", from_),
        "Direction": "inbound",
        "CallSid": call_sid or new_sid("CA"),
        "To": to,
        "ApiVersion": TWILIO_API_VERSION,
        "CallStatus": call_status,
        "From": from_,
        "AccountSid": account_sid,
    }
    return {**fields, **(extra or {})}


def twilio_status_params(
    *,
    message_sid: str,
    status: str,
    from_: str,
    to: str,
    account_sid: str,
    error_code: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The fields Twilio posts to a message's StatusCallback (sent, delivered, failed, …)."""
    fields = {
        "SmsSid": message_sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": to,
        "MessageSid": message_sid,
        "AccountSid": account_sid,
        "From": from_,
        "ApiVersion": TWILIO_API_VERSION,
    }
    if error_code is not None or status in ("failed", "undelivered"):
        fields["ErrorCode"] = error_code or "30003"
    return {**fields, **(extra or {})}


def signed_twilio_form(
    url: str, auth_token: str, fields: Mapping[str, str], *, idempotency_token: str | None = None
) -> SignedForm:
    """Twilio's webhook request: the fields, signed for the full public URL."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": twilio_signature(auth_token, url, dict(fields)),
        "I-Twilio-Idempotency-Token": idempotency_token or secrets.token_hex(16),
    }
    return SignedForm(url, dict(fields), headers)


def _whatsapp_change(
    value: dict[str, Any], *, waba_id: str, phone_number_id: str, display_phone_number: str
) -> dict[str, Any]:
    metadata = {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "changes": [
                    {
                        "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def meta_text_message_payload(
    *,
    from_wa_id: str,
    body: str,
    profile_name: str,
    phone_number_id: str = "106540352242922",
    display_phone_number: str = "97235551234",
    waba_id: str = "102290129340398",
    message_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """The messages webhook Meta posts for an incoming text."""
    message = {
        "from": from_wa_id,
        "id": message_id or wamid(from_wa_id),
        "timestamp": str(timestamp or int(time.time())),
        "text": {"body": body},
        "type": "text",
    }
    value = {
        "contacts": [{"profile": {"name": profile_name}, "wa_id": from_wa_id}],
        "messages": [message],
    }
    return _whatsapp_change(
        value,
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def meta_status_payload(
    *,
    message_id: str,
    status: str,
    recipient_id: str,
    phone_number_id: str = "106540352242922",
    display_phone_number: str = "97235551234",
    waba_id: str = "102290129340398",
    timestamp: int | None = None,
    error_code: int = 131047,
) -> dict[str, Any]:
    """The messages webhook Meta posts when a sent message is sent, delivered, read or failed."""
    update: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": str(timestamp or int(time.time())),
        "recipient_id": recipient_id,
    }
    if status in ("sent", "delivered"):
        update["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "service"}}
        update["pricing"] = {
            "billable": False,
            "pricing_model": "PMP",
            "category": "service",
            "type": "free_customer_service",
        }
    if status == "failed":
        _, title, details = META_ERRORS.get(error_code, (400, "Error", None))
        update["errors"] = [
            {
                "code": error_code,
                "title": title,
                "message": title,
                "error_data": {"details": details or title},
                "href": META_ERROR_CODES_URL,
            }
        ]
    return _whatsapp_change(
        {"statuses": [update]},
        waba_id=waba_id,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def signed_meta_body(app_secret: str, payload: dict[str, Any]) -> SignedJson:
    """Meta's webhook request: compact JSON with non-ASCII and "/" escaped, as Meta writes it,
    signed over those exact bytes (so a receiver that re-serialises fails, as it should)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    body = text.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "facebookexternalua",
        "X-Hub-Signature-256": meta_signature(app_secret, body),
    }
    return SignedJson(payload, body, headers)


def mailgun_forward_form(
    url: str,
    signing_key: str,
    *,
    sender: str,
    recipient: str,
    subject: str,
    body_plain: str,
    body_html: str | None = None,
    from_header: str | None = None,
    message_id: str | None = None,
    timestamp: int | None = None,
    token: str | None = None,
) -> SignedForm:
    """The form a Mailgun route's forward() posts for a received mail, signed."""
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    nonce = token or secrets.token_hex(25)  # Mailgun's tokens are 50 characters
    message_id = message_id or f"<{secrets.token_hex(12)}@mail.example.com>"
    from_header = from_header or sender
    date = format_datetime(datetime.now(UTC))
    headers = [
        ["Date", date],
        ["From", from_header],
        ["To", recipient],
        ["Message-Id", message_id],
        ["Subject", subject],
        ["Mime-Version", "1.0"],
    ]
    fields = {
        "recipient": recipient,
        "sender": sender,
        "subject": subject,
        "from": from_header,
        "X-Envelope-From": f"<{sender}>",
        "Date": date,
        "From": from_header,
        "To": recipient,
        "Message-Id": message_id,
        "Subject": subject,
        "Mime-Version": "1.0",
        "message-headers": json.dumps(headers),
        "body-plain": body_plain,
        "stripped-text": body_plain.strip(),
        "stripped-signature": "",
        "timestamp": stamp,
        "token": nonce,
        "signature": mailgun_signature(signing_key, stamp, nonce),
    }
    if body_html is not None:
        fields["body-html"] = body_html
        fields["stripped-html"] = body_html
    return SignedForm(url, fields, {"Content-Type": "application/x-www-form-urlencoded"})
