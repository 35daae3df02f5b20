"""Leads arriving from outside: the business's web form and the providers' webhooks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from starlette.datastructures import FormData
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from console.base import ratelimit
from console.base.characters import cleaned, without_controls
from console.base.errors import ConsoleError, Invalid, Unauthorized, UnsupportedMedia
from console.intake import mailgun, twilio, web_forms, whatsapp
from console.intake.arrivals import Arrived
from console.intake.writer import ArrivalWriter
from console.tasks.task_acks import apply_button_reply
from routes.errors import console_error
from routes.forms import now, speak_the_callers_language
from routes.middleware import client_address

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TWIML = "application/xml"


async def web_form(request: Request) -> Response:
    """`POST /intake/{business_slug}/form` with `X-Intake-Key`: 201 new, 200 when seen before.

    The form on a business's own site posts from the visitor's browser: any origin may, with
    the key (no cookies are involved, so this opens nothing else), and reads the answer, a
    refusal included. The refusal is in the form's language (its Accept-Language)."""
    speak_the_callers_language(request)
    try:
        response = _arrived(await _receive_form(request))
    except ConsoleError as refusal:
        response = await console_error(request, refusal)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def _receive_form(request: Request) -> Arrived:
    slug, key = request.path_params["business_slug"], request.headers.get("x-intake-key", "")
    settings = request.app.state.settings
    await ratelimit.check_web_form(
        request.app.state.limiter,
        slug=slug,
        key=key,
        address=client_address(request.scope, settings.trusted_proxies),
        per_key=settings.intake_rate_per_key,
        per_address=settings.intake_rate_per_address,
    )
    arrival = web_forms.form_arrival(slug, key, await _fields(request), now(request))
    return await _writer(request).receive(arrival)  # written in a group


# The browser asks first whether the site may post with its key header.
web_form_preflight = CORSMiddleware(
    Response(status_code=204, headers={"Allow": "POST, OPTIONS"}),
    allow_origins=["*"],
    allow_methods=["POST"],
    allow_headers=["Content-Type", "X-Intake-Key", "Accept-Language"],
    max_age=86_400,
)


async def twilio_sms(request: Request) -> Response:
    """`POST /intake/twilio/sms`: an incoming SMS (Twilio's messaging webhook), or an on-call
    person's reply with his page's code."""
    params, moment = await _twilio_params(request), now(request)
    if not await twilio.code_reply(request.app.state.db, params, now=moment):
        await _writer(request).receive(twilio.sms_arrival(params, now=moment))
    return Response(twilio.twiml(), media_type=TWIML)


async def twilio_voice(request: Request) -> Response:
    """`POST /intake/twilio/voice`: a call ringing, the agency's answer or not, its end."""
    params = await _twilio_params(request)
    step = twilio.CallStep.of(params)
    answer = await twilio.receive_call(
        request.app.state.db,
        _writer(request),
        request.app.state.settings,
        step,
        voice_url=_public_url(request).split("?")[0],
        now=now(request),
    )
    return Response(answer, media_type=TWIML)


async def twilio_status(request: Request) -> Response:
    """`POST /intake/twilio/status`: how far a message we sent got."""
    params = await _twilio_params(request)
    async with request.app.state.db.transaction() as session:
        await twilio.receive_status(session, params, now=now(request))
    return Response(status_code=204)


async def whatsapp_subscribe(request: Request) -> Response:
    """`GET /intake/whatsapp`: Meta checks the webhook by our verify token."""
    query = request.query_params
    challenge = whatsapp.verify_subscription(
        request.app.state.settings,
        query.get("hub.mode", ""),
        query.get("hub.verify_token", ""),
        query.get("hub.challenge", ""),
    )
    return PlainTextResponse(challenge)


async def whatsapp_events(request: Request) -> Response:
    """`POST /intake/whatsapp`: messages and delivery statuses, signed over the raw body."""
    _content_type(request, ("application/json",))
    async with _signed(request):
        payload = whatsapp.verify(
            request.app.state.settings,
            await request.body(),
            request.headers.get("x-hub-signature-256"),
        )
    payload = cleaned(payload)  # signed as sent; kept without control characters
    settings, moment = request.app.state.settings, now(request)
    new, news = await whatsapp.receive_batch(
        request.app.state.db,
        _writer(request),
        whatsapp.parse(payload, now=moment),
        now=moment,
        agency_line=settings.whatsapp_phone_number_id,
        button_reply=lambda s, payload: apply_button_reply(
            s, payload, now=moment, secret_key=settings.secret_key
        ),
    )
    return JSONResponse({"messages": new, "statuses": news})


async def email(request: Request) -> Response:
    """`POST /intake/email`: a mail forwarded by a Mailgun route."""
    _content_type(request, FORM_TYPES)
    async with _signed(request):
        fields = _texts(await request.form())
        await mailgun.verify(
            request.app.state.settings,
            request.app.state.limiter,
            fields,
            now=request.app.state.clock.now().timestamp(),
        )
    fields = cleaned(fields)  # signed as sent; kept without control characters
    arrived = await _writer(request).receive(mailgun.mail_arrival(fields, now=now(request)))
    return _arrived(arrived)


def _received(lead_id: object, contact_id: object, duplicate: bool) -> Response:
    body = {"lead_id": str(lead_id), "contact_id": str(contact_id), "duplicate": duplicate}
    return JSONResponse(body, status_code=200 if duplicate else 201)


def _arrived(arrived: Arrived) -> Response:
    return _received(arrived.lead_id, arrived.contact_id, arrived.duplicate)


def _writer(request: Request) -> ArrivalWriter:
    writer: ArrivalWriter = request.app.state.arrivals
    return writer


def _public_url(request: Request) -> str:
    """The URL the provider called: PUBLIC_URL and the path behind a proxy, else as received."""
    public: str | None = request.app.state.settings.public_url
    if not public:
        return str(request.url)
    query = request.url.query
    return public + request.url.path + (f"?{query}" if query else "")


async def _twilio_params(request: Request) -> dict[str, list[str]]:
    _content_type(request, ("application/x-www-form-urlencoded",))
    async with _signed(request):
        form = await request.form()
        params: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            if isinstance(value, str):
                params.setdefault(name, []).append(value)
        twilio.verify(
            request.app.state.settings,
            _public_url(request),
            params,
            request.headers.get("x-twilio-signature"),
        )
    # signed as sent; kept without control characters
    return {name: [without_controls(value) for value in values] for name, values in params.items()}


@asynccontextmanager
async def _signed(request: Request) -> AsyncIterator[None]:
    """A provider's webhook: an address that sent too many bad signatures this minute is
    refused before its body is read (429); each bad signature counts against it."""
    settings, limiter = request.app.state.settings, request.app.state.limiter
    address = client_address(request.scope, settings.trusted_proxies)
    await ratelimit.refuse_a_forger(limiter, address, settings.webhook_bad_signatures_per_address)
    try:
        yield
    except Unauthorized:
        await ratelimit.count_a_bad_signature(limiter, address)
        raise


def _content_type(request: Request, accepted: tuple[str, ...]) -> None:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in accepted:
        raise UnsupportedMedia("Send %(types)s.", types=" or ".join(accepted))


def _texts(form: FormData) -> dict[str, str]:
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def _fields(request: Request) -> Mapping[str, object]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            parsed = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested past Python's stack
            raise Invalid("The body is not valid JSON.", field="body") from None
        if not isinstance(parsed, dict):
            raise Invalid("The body must be a JSON object.", field="body")
        return parsed
    if content_type in FORM_TYPES:
        return _texts(await request.form())
    raise UnsupportedMedia("Send JSON or a form (application/x-www-form-urlencoded).")
