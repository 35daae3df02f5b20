"""Fake providers for tests: real servers on 127.0.0.1 that speak Twilio's, Meta's and SMTP's
formats, and (from `console.demo.webhook_payloads`) builders of the signed webhooks they send us.

The HTTP fakes are Starlette apps served by uvicorn inside the test's own event loop:

    async with FakeTwilio() as twilio:
        adapter = TwilioMessages(twilio.account_sid, twilio.auth_token,
                                 base_url=twilio.base_url, allow_private=True)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import socket
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, quote

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The builders of inbound webhooks live in the console (`mazkira simulate` sends them too);
# tests import them from here as before.
from console.base.config import Settings
from console.demo.webhook_payloads import META_ERRORS, TWILIO_API_VERSION, wamid
from console.demo.webhook_payloads import SignedForm as SignedForm
from console.demo.webhook_payloads import SignedJson as SignedJson
from console.demo.webhook_payloads import mailgun_forward_form as mailgun_forward_form
from console.demo.webhook_payloads import meta_status_payload as meta_status_payload
from console.demo.webhook_payloads import meta_text_message_payload as meta_text_message_payload
from console.demo.webhook_payloads import new_sid as new_sid
from console.demo.webhook_payloads import signed_meta_body as signed_meta_body
from console.demo.webhook_payloads import signed_twilio_form as signed_twilio_form
from console.demo.webhook_payloads import twilio_sms_params as twilio_sms_params
from console.demo.webhook_payloads import twilio_status_params as twilio_status_params
from console.demo.webhook_payloads import twilio_voice_params as twilio_voice_params
from console.demo.webhook_payloads import twilio_whatsapp_params as twilio_whatsapp_params

E164 = re.compile(r"^\+[1-9]\d{6,14}$")

# --------------------------------------------------------------------------- HTTP fakes


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode(), keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Failure:
    status: int
    body: dict[str, Any]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the test runner's signal handlers alone."""
        yield


class FakeHttpServer:
    """A Starlette app on a free port of 127.0.0.1, recording every request it receives."""

    def __init__(self, routes: list[Route]) -> None:
        self.app = Starlette(routes=routes)
        self.requests: list[RecordedRequest] = []
        self.failures: deque[Failure] = deque()
        # Seconds to wait before answering, to make a client time out.
        self.delay = 0.0
        self.port = 0
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget what was received and any failures still queued."""
        self.requests.clear()
        self.failures.clear()
        self.delay = 0.0

    async def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task  # raises why it could not start
                raise RuntimeError("the fake server stopped before it started")
            await asyncio.sleep(0.005)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()

    async def record(self, request: Request) -> RecordedRequest:
        recorded = RecordedRequest(
            request.method,
            request.url.path,
            {name.lower(): value for name, value in request.headers.items()},
            await request.body(),
        )
        self.requests.append(recorded)
        if self.delay:
            await asyncio.sleep(self.delay)
        return recorded

    def queued_failure(self) -> Response | None:
        if not self.failures:
            return None
        failure = self.failures.popleft()
        return JSONResponse(failure.body, status_code=failure.status)


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's REST error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


TWILIO_DEFAULT_FAILURES = {
    400: (21211, "The 'To' number +97250000 is not a valid phone number."),
    401: (20003, "Authenticate"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


class FakeTwilio(FakeHttpServer):
    """Twilio's Messages resource: POST /2010-04-01/Accounts/{sid}/Messages.json."""

    def __init__(self, account_sid: str | None = None, auth_token: str | None = None) -> None:
        super().__init__(
            [
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Messages.json",
                    self.create_message,
                    methods=["POST"],
                )
            ]
        )
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or secrets.token_hex(16)
        self.messages: list[dict[str, Any]] = []
        self.by_idempotency_token: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        super().reset()
        self.messages.clear()
        self.by_idempotency_token.clear()

    def fail_next(
        self, count: int = 1, status: int = 500, *, code: int | None = None, message: str = ""
    ) -> None:
        """Answer the next `count` requests with this status and Twilio's error body."""
        default_code, default_message = TWILIO_DEFAULT_FAILURES.get(status, (20001, "Error"))
        body = twilio_error(status, code or default_code, message or default_message)
        self.failures.extend(Failure(status, body) for _ in range(count))

    async def create_message(self, request: Request) -> Response:
        recorded = await self.record(request)
        if failure := self.queued_failure():
            return failure
        if request.path_params["account_sid"] != self.account_sid:
            return JSONResponse(
                twilio_error(
                    404, 20404, f"The requested resource {request.url.path} was not found"
                ),
                status_code=404,
            )
        if not self._authorised(request):
            return JSONResponse(twilio_error(401, 20003, "Authenticate"), status_code=401)
        token = request.headers.get("i-twilio-idempotency-token")
        if token and token in self.by_idempotency_token:
            return JSONResponse(self.by_idempotency_token[token], status_code=201)
        form = {name: values[-1] for name, values in recorded.form().items()}
        refusal = self._refusal(form)
        if refusal:
            return JSONResponse(refusal, status_code=400)
        message = self._message(form)
        self.messages.append(message)
        if token:
            self.by_idempotency_token[token] = message
        return JSONResponse(message, status_code=201)

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    @staticmethod
    def _refusal(form: dict[str, str]) -> dict[str, Any] | None:
        if not form.get("To"):
            return twilio_error(400, 21604, "A 'To' phone number is required.")
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl"):
            return twilio_error(400, 21602, "Message body is required.")
        if not E164.match(form["To"].removeprefix("whatsapp:")):
            message = f"The 'To' number {form['To']} is not a valid phone number."
            return twilio_error(400, 21211, message)
        return None

    def _message(self, form: dict[str, str]) -> dict[str, Any]:
        sid = new_sid("SM")
        uri = f"/{TWILIO_API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}"
        now = format_datetime(datetime.now(UTC), usegmt=True).replace("GMT", "+0000")
        return {
            "account_sid": self.account_sid,
            "api_version": TWILIO_API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        }


def meta_error(
    code: int, message: str, *, error_type: str = "OAuthException", details: str | None = None
) -> dict[str, Any]:
    """The Graph API's error body."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    return {"error": error}


class FakeMeta(FakeHttpServer):
    """The Cloud API's POST /{version}/{phone_number_id}/messages."""

    def __init__(
        self,
        access_token: str | None = None,
        phone_number_id: str = "106540352242922",
        api_version: str = "v21.0",
    ) -> None:
        super().__init__(
            [Route("/{version}/{phone_number_id}/messages", self.send, methods=["POST"])]
        )
        self.access_token = access_token or secrets.token_urlsafe(32)
        self.phone_number_id = phone_number_id
        self.api_version = api_version
        self.messages: list[dict[str, Any]] = []

    def reset(self) -> None:
        super().reset()
        self.messages.clear()

    def fail_next(
        self,
        count: int = 1,
        *,
        code: int = 131047,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `count` requests with the Graph API error of this code."""
        default_status, title, details = META_ERRORS.get(code, (400, "Error", None))
        body = meta_error(code, message or f"(#{code}) {title}", details=details)
        self.failures.extend(Failure(status or default_status, body) for _ in range(count))

    async def send(self, request: Request) -> Response:
        recorded = await self.record(request)
        if failure := self.queued_failure():
            return failure
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            code, message = 190, "Invalid OAuth access token - Cannot parse access token"
            return JSONResponse(meta_error(code, message), status_code=401)
        if (
            request.path_params["version"] != self.api_version
            or request.path_params["phone_number_id"] != self.phone_number_id
        ):
            message = "Unsupported post request. Object does not exist"
            return JSONResponse(meta_error(100, message, error_type="GraphMethodException"), 400)
        try:
            payload = recorded.json()
        except ValueError:
            return JSONResponse(meta_error(100, "(#100) Invalid parameter"), status_code=400)
        problem = self._problem(payload)
        if problem:
            return JSONResponse(
                meta_error(100, "(#100) Invalid parameter", details=problem), status_code=400
            )
        self.messages.append(payload)
        wa_id = payload["to"]
        sent: dict[str, Any] = {"id": wamid(wa_id)}
        if payload["type"] == "template":
            sent["message_status"] = "accepted"
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": payload["to"], "wa_id": wa_id}],
                "messages": [sent],
            }
        )

    @staticmethod
    def _interactive_problem(interactive: Any) -> str | None:
        """Reply buttons as the Cloud API takes them: a body of up to 1024 characters and 1-3
        buttons with unique ids (up to 256 characters) and unique titles (up to 20)."""
        if not isinstance(interactive, dict) or interactive.get("type") != "button":
            return "interactive.type must be button (the fake takes reply buttons only)"
        text = (interactive.get("body") or {}).get("text")
        if not isinstance(text, str) or not 1 <= len(text) <= 1024:
            return "interactive.body.text is required, at most 1024 characters"
        buttons = (interactive.get("action") or {}).get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return "interactive.action.buttons takes 1 to 3 buttons"
        replies = [b.get("reply") if isinstance(b, dict) else None for b in buttons]
        if any(
            not isinstance(b, dict) or b.get("type") != "reply" or not isinstance(r, dict)
            for b, r in zip(buttons, replies, strict=True)
        ):
            return "each button is {type: reply, reply: {id, title}}"
        ids = [r.get("id") for r in replies if isinstance(r, dict)]
        titles = [r.get("title") for r in replies if isinstance(r, dict)]
        if any(not isinstance(i, str) or not 1 <= len(i) <= 256 for i in ids) or len(
            set(ids)
        ) != len(ids):
            return "button ids must be unique, 1 to 256 characters"
        if any(not isinstance(t, str) or not 1 <= len(t) <= 20 for t in titles) or len(
            set(titles)
        ) != len(titles):
            return "button titles must be unique, 1 to 20 characters"
        return None

    @staticmethod
    def _problem(payload: Any) -> str | None:
        if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
            return "messaging_product is required and must be whatsapp"
        if not isinstance(payload.get("to"), str) or not payload["to"].isdigit():
            return "to must be a phone number"
        kind = payload.get("type", "text")
        if kind == "text":
            if not payload.get("text", {}).get("body"):
                return "text.body is required"
        elif kind == "template":
            template = payload.get("template", {})
            if not template.get("name") or not template.get("language", {}).get("code"):
                return "template.name and template.language.code are required"
        elif kind == "interactive":
            return FakeMeta._interactive_problem(payload.get("interactive"))
        else:
            return f"unsupported message type {kind}"
        return None


# --------------------------------------------------------------------------- SMTP fake


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the fake relay took it, with the headers decoded."""

    envelope_from: str
    envelope_to: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def header(self, name: str) -> str:
        """The header decoded from RFC 2047 (aiosmtpd keeps it encoded: STACK-NOTES trap 12)."""
        raw_headers = BytesParser(policy=policy.compat32).parsebytes(self.raw, headersonly=True)
        value = raw_headers[name]
        return "" if value is None else str(make_header(decode_header(value)))

    @property
    def subject(self) -> str:
        return self.header("Subject")

    @property
    def text(self) -> str:
        return self._body("plain")

    @property
    def html(self) -> str:
        return self._body("html")

    def _body(self, subtype: str) -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        return "" if part is None else str(part.get_content())


class _Relay:
    """The aiosmtpd handler: stores messages, or refuses as it was told to."""

    def __init__(self, owner: FakeSmtp) -> None:
        self.owner = owner

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.owner.refusals:
            return self.owner.refusals.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.owner.received.append(
            ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), content)
        )
        return "250 Message accepted for delivery"


class FakeSmtp:
    """An SMTP relay on a free port of 127.0.0.1 (aiosmtpd, in its own thread)."""

    def __init__(self, *, username: str | None = None, password: str | None = None) -> None:
        self.username = username
        self.password = password
        self.received: list[ReceivedMail] = []
        self.refusals: deque[str] = deque()
        self.port = free_port()
        self._controller: Controller | None = None

    def url(self, sender: str = "agency@example.com") -> str:
        """An SMTP_URL for this relay."""
        credentials = ""
        if self.username is not None:
            credentials = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}@"
        return f"smtp://{credentials}127.0.0.1:{self.port}?from={quote(sender)}"

    def refuse_next(self, count: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `count` recipients with this SMTP reply."""
        self.refusals.extend(reply for _ in range(count))

    def reset(self) -> None:
        self.received.clear()
        self.refusals.clear()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    async def start(self) -> None:
        options: dict[str, Any] = {}
        if self.username is not None:
            options = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(
            _Relay(self), hostname="127.0.0.1", port=self.port, ready_timeout=5.0, **options
        )
        await asyncio.to_thread(self._controller.start)

    async def stop(self) -> None:
        if self._controller is not None:
            await asyncio.to_thread(self._controller.stop)
            self._controller = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def settings_with_fakes(
    database_url: str,
    secret_key: str,
    twilio: FakeTwilio,
    meta: FakeMeta,
    smtp: FakeSmtp,
    **more: Any,
) -> Settings:
    """Settings that send through these local fakes (private URLs allowed: they are local), the
    WhatsApp template `follow_up:he` for outside the 24-hour window, and `more` on top."""
    return Settings(
        database_url=database_url,
        secret_key=secret_key,
        allow_private_provider_urls=True,
        twilio_account_sid=twilio.account_sid,
        twilio_auth_token=twilio.auth_token,
        twilio_api_url=twilio.base_url,
        whatsapp_access_token=meta.access_token,
        whatsapp_api_url=meta.base_url,
        smtp_url=smtp.url(),
        whatsapp_reply_template="follow_up:he",
        **more,
    )
