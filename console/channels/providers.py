"""Outbound messages: one small adapter per provider (Twilio, Meta's WhatsApp Cloud API; SMTP in
console/channels/mail.py).

Each send takes an idempotency key from the caller, returns a `SendResult` or raises
`ProviderError`, whose `retryable` tells a job whether trying again later can help.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger("mazkira.providers")

# Connecting should be quick; a provider may take a while to answer a send.
HTTP_TIMEOUT = httpx.Timeout(15.0, connect=5.0)

# Graph API error codes that mean "later may work": rate limits and temporary outages.
# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
META_RETRYABLE_CODES = frozenset(
    {
        1,  # API unknown error
        2,  # API service temporarily unavailable
        4,  # application request limit reached
        80007,  # WhatsApp Business Account rate limit
        130429,  # throughput (messages per second) reached
        131000,  # something went wrong
        131016,  # service unavailable
        131056,  # too many messages to the same recipient (pair rate limit)
        133004,  # server temporarily unavailable
    }
)
# The customer last wrote more than 24 hours ago: only an approved template may be sent.
META_REENGAGEMENT_CODE = 131047
# Reply-buttons messages: up to 3 buttons, titles of 20 characters, ids of 256, a body of 1024.
META_MAX_BUTTONS = 3
META_BUTTON_TITLE_LENGTH = 20
META_BUTTON_ID_LENGTH = 256
META_BUTTONS_BODY_LENGTH = 1024


@dataclass(frozen=True)
class SendResult:
    """What the provider answered: its id for the message and the status it reported."""

    provider_id: str
    status: str


class ProviderError(Exception):
    """A send that failed; `retryable` says whether the same send may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code
        self.http_status = http_status


def check_public_url(url: str, *, allow_private: bool) -> None:
    """Refuse anything but http(s), and unless allowed, hosts on private networks.

    Resolves the host name (blocking); in async code use `check_public_url_async`.
    """
    host, port = _http_host(url)
    if allow_private:
        return
    _refuse_private(host, _resolve(host, port))


async def check_public_url_async(url: str, *, allow_private: bool) -> None:
    """`check_public_url`, resolving the host name in a thread."""
    host, port = _http_host(url)
    if allow_private:
        return
    _refuse_private(host, await asyncio.to_thread(_resolve, host, port))


def _http_host(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"only http and https URLs are allowed, not {url!r}")
    if not parts.hostname:
        raise ValueError(f"the URL {url!r} has no host")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"the URL {url!r} has a malformed port") from error
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _resolve(host: str, port: int) -> list[str]:
    """The addresses a host stands for: itself when it is a literal, else what DNS says."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return ["127.0.0.1"]  # RFC 6761: always loopback, whatever a resolver says
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise ValueError(f"cannot resolve {host!r}: {error}") from error
    return [str(entry[4][0]) for entry in found]


def _refuse_private(host: str, addresses: list[str]) -> None:
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast or address.is_unspecified:
            raise ValueError(f"{host!r} is not a public address ({address})")


class _HttpAdapter:
    """What the HTTP adapters share: the base URL guard and the client they send with.

    The guard checks the configured base URL once, on the first send (so it never blocks the
    constructor on DNS); it protects against a misconfigured URL, not against DNS rebinding.
    """

    def __init__(self, base_url: str, http: httpx.AsyncClient | None, allow_private: bool) -> None:
        _http_host(base_url)  # a wrong scheme is a configuration error: say so at once
        self.base_url = base_url.rstrip("/")
        self.allow_private = allow_private
        self._http = http
        self._checked = False

    @asynccontextmanager
    async def _client(self) -> AsyncIterator[httpx.AsyncClient]:
        if not self._checked:
            await check_public_url_async(self.base_url, allow_private=self.allow_private)
            self._checked = True
        if self._http is not None:
            yield self._http
            return
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            yield client

    async def _post(self, url: str, idempotency_key: str, **request: Any) -> httpx.Response:
        """Send, turning timeouts and broken connections into retryable errors."""
        async with self._client() as client:
            try:
                return await client.post(url, **request)
            except httpx.TimeoutException as error:
                failure = ProviderError(f"timed out: {error!r}", retryable=True)
                raise logged_failure(idempotency_key, failure) from error
            except httpx.TransportError as error:
                failure = ProviderError(f"connection failed: {error!r}", retryable=True)
                raise logged_failure(idempotency_key, failure) from error


def logged_failure(idempotency_key: str, error: ProviderError) -> ProviderError:
    log.warning(
        "send %s failed (%s, code %s, retryable %s): %s",
        idempotency_key,
        error.http_status,
        error.code,
        error.retryable,
        error.message,
    )
    return error


def _retryable_status(status: int) -> bool:
    return status >= 500 or status == 429


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


class TwilioMessages(_HttpAdapter):
    """SMS and WhatsApp through Twilio's Messages resource (REST API 2010-04-01)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = "https://api.twilio.com",
        http: httpx.AsyncClient | None = None,
        status_callback: str | None = None,
        allow_private: bool = False,
    ) -> None:
        super().__init__(base_url, http, allow_private)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.status_callback = status_callback

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    async def send_sms(self, to: str, from_: str, body: str, *, idempotency_key: str) -> SendResult:
        """Create a Message, sending the key as I-Twilio-Idempotency-Token.

        Twilio documents that header on the webhooks it sends, not as a promise to deduplicate
        API calls: callers still record their sends and skip keys they already sent.
        """
        form = {"To": to, "From": from_, "Body": body}
        if self.status_callback:
            form["StatusCallback"] = self.status_callback
        response = await self._post(
            self.messages_url,
            idempotency_key,
            data=form,
            auth=(self.account_sid, self.auth_token),
            headers={"I-Twilio-Idempotency-Token": idempotency_key, "Accept": "application/json"},
        )
        answer = _json_object(response)
        if response.is_success and isinstance(answer.get("sid"), str):
            log.info("twilio accepted %s as %s", idempotency_key, answer["sid"])
            return SendResult(provider_id=answer["sid"], status=str(answer.get("status", "")))
        code = answer.get("code")
        raise logged_failure(
            idempotency_key,
            ProviderError(
                str(answer.get("message") or f"Twilio answered {response.status_code}"),
                retryable=_retryable_status(response.status_code),
                code=code if isinstance(code, int) else None,
                http_status=response.status_code,
            ),
        )

    async def send_whatsapp(
        self, to: str, from_: str, body: str, *, idempotency_key: str
    ) -> SendResult:
        """The same Messages call with whatsapp: addresses (E.164 numbers accepted as well)."""
        return await self.send_sms(
            _whatsapp_address(to), _whatsapp_address(from_), body, idempotency_key=idempotency_key
        )


def _whatsapp_address(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


class MetaWhatsApp(_HttpAdapter):
    """WhatsApp through Meta's Cloud API (Graph API /{phone_number_id}/messages).

    Meta has no idempotency header: the key only goes to logs, and the caller must keep its
    own record of what it sent (a unique key per outbound message) so a retry after an
    ambiguous failure (timeout, 5xx) does not send twice.
    """

    def __init__(
        self,
        access_token: str,
        phone_number_id: str,
        *,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        http: httpx.AsyncClient | None = None,
        allow_private: bool = False,
    ) -> None:
        super().__init__(base_url, http, allow_private)
        self.access_token = access_token
        self.phone_number_id = phone_number_id
        self.api_version = api_version

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/{self.api_version}/{self.phone_number_id}/messages"

    async def send_text(self, to: str, body: str, *, idempotency_key: str) -> SendResult:
        """A free-form text: allowed only within 24 hours of the customer's last message."""
        return await self._send(
            to,
            {"type": "text", "text": {"preview_url": False, "body": body}},
            idempotency_key,
        )

    async def send_template(
        self,
        to: str,
        template_name: str,
        language_code: str,
        parameters: list[str],
        *,
        idempotency_key: str,
    ) -> SendResult:
        """An approved template, the only thing Meta delivers outside the 24-hour window."""
        template: dict[str, Any] = {"name": template_name, "language": {"code": language_code}}
        if parameters:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": value} for value in parameters],
                }
            ]
        return await self._send(to, {"type": "template", "template": template}, idempotency_key)

    async def send_buttons(
        self,
        to: str,
        body: str,
        buttons: Sequence[Mapping[str, str]],
        *,
        idempotency_key: str,
    ) -> SendResult:
        """A text with up to three reply buttons (an interactive message, within the 24-hour
        window like any free-form message); a tap comes back on the webhook as a `button_reply`
        carrying the button's id."""
        problem = _buttons_problem(body, buttons)
        if problem:  # no retry can make Meta accept it
            raise logged_failure(idempotency_key, ProviderError(problem, retryable=False))
        interactive = {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": button["id"], "title": button["title"]}}
                    for button in buttons
                ]
            },
        }
        return await self._send(
            to, {"type": "interactive", "interactive": interactive}, idempotency_key
        )

    async def _send(self, to: str, content: dict[str, Any], idempotency_key: str) -> SendResult:
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "".join(ch for ch in to if ch in "0123456789"),
            **content,
        }
        response = await self._post(
            self.messages_url,
            idempotency_key,
            json=payload,
            headers={"Authorization": f"Bearer {self.access_token}"},
        )
        answer = _json_object(response)
        messages = answer.get("messages")
        if response.is_success and isinstance(messages, list) and messages:
            first = messages[0]
            if isinstance(first, dict) and isinstance(first.get("id"), str):
                log.info("meta accepted %s as %s", idempotency_key, first["id"])
                return SendResult(first["id"], str(first.get("message_status", "accepted")))
        raise logged_failure(idempotency_key, _meta_error(response, answer))


def _buttons_problem(body: str, buttons: Sequence[Mapping[str, str]]) -> str | None:
    """What Meta would refuse in a reply-buttons message, or None.
    https://developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages
    """
    if not body or len(body) > META_BUTTONS_BODY_LENGTH:
        return f"a reply-buttons message needs a body of 1-{META_BUTTONS_BODY_LENGTH} characters"
    if not 1 <= len(buttons) <= META_MAX_BUTTONS:
        return f"a reply-buttons message has 1-{META_MAX_BUTTONS} buttons"
    ids = [button.get("id", "") for button in buttons]
    titles = [button.get("title", "") for button in buttons]
    if any(not i or len(i) > META_BUTTON_ID_LENGTH for i in ids) or len(set(ids)) != len(ids):
        return f"button ids must be unique and 1-{META_BUTTON_ID_LENGTH} characters"
    if any(not t or len(t) > META_BUTTON_TITLE_LENGTH for t in titles) or len(set(titles)) != len(
        titles
    ):
        return f"button titles must be unique and 1-{META_BUTTON_TITLE_LENGTH} characters"
    return None


def _meta_error(response: httpx.Response, answer: dict[str, Any]) -> ProviderError:
    error = answer.get("error")
    if not isinstance(error, dict):
        return ProviderError(
            f"Meta answered {response.status_code} without an error",
            retryable=_retryable_status(response.status_code),
            http_status=response.status_code,
        )
    code = error.get("code")
    code = code if isinstance(code, int) else None
    message = str(error.get("message") or f"Meta answered {response.status_code}")
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, dict) else None
    if isinstance(details, str) and details and details not in message:
        message = f"{message}: {details}"
    return ProviderError(
        message,
        retryable=_retryable_status(response.status_code) or code in META_RETRYABLE_CODES,
        code=code,
        http_status=response.status_code,
    )
