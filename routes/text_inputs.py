"""Text sent to the console carries no control characters: one check for every route, before
any handler reads a field, so a route added tomorrow is covered too."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import Request

from console.base.characters import first_with_control, has_control, without_controls
from console.base.errors import Invalid, NotFound
from routes.errors import console_error
from routes.middleware import ASGIApp, Message, Receive, Scope, Send

# Providers (and the agency's SIP server) sign what they sent, so their text is taken as it
# came and cleaned after the signature is checked (routes/intake.py, routes/sip.py): refused,
# they would retry and then drop the message, or the call.
SIGNED_BY_PROVIDERS = ("/intake/twilio/", "/intake/whatsapp", "/intake/email", "/sip/")
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON = "application/json"
# What may hold a control character, as sent: the raw byte, a percent escape (%00–%1F but %09,
# %0A, %0D) in a form or a query, a JSON escape (\u0000–\u001F, \b, \f). A body without any is
# passed on without being parsed (one scan: the web form's hot path); one with some is parsed
# to name the field.
RAW_CONTROLS = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
PERCENT_CONTROL = re.compile(rb"%(?:0[0-8bcefBCEF]|1[0-9a-fA-F])")
JSON_CONTROL = re.compile(rb"\\(?:u00[01][0-9a-fA-F]|[bf])")


def _may_hold_control(data: bytes, escapes: re.Pattern[bytes]) -> bool:
    return len(data.translate(None, RAW_CONTROLS)) != len(data) or bool(escapes.search(data))


class TextInputs:
    """A path, a query field, a form field or a JSON string holding a C0 control character
    other than tab and line breaks is refused with 422 naming the field (a path with 404:
    no page has such an address), and the handler never runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SIGNED_BY_PROVIDERS):
            await self.app(scope, receive, send)
            return
        refusal: Exception | None = None
        if has_control(scope["path"]):
            refusal = NotFound("This page does not exist, or it is not yours to see.")
        elif field := _in_query(scope["query_string"]):
            refusal = _refused(field)
        else:
            receive, field = await _in_body(scope, receive)
            if field:
                refusal = _refused(field)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        response = await console_error(Request(scope, receive), refusal)
        await response(scope, receive, send)


def _refused(field: str) -> Invalid:
    name = without_controls(field)
    return Invalid(
        "“%(name)s” holds a control character (an invisible code such as U+0000). "
        "Remove it and send again.",
        field=name,
        name=name,
    )


def _in_query(query: bytes) -> str | None:
    if not _may_hold_control(query, PERCENT_CONTROL):
        return None
    return _in_pairs(parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True))


def _in_pairs(pairs: list[tuple[str, str]]) -> str | None:
    for name, value in pairs:
        if has_control(name) or has_control(value):
            return name
    return None


async def _in_body(scope: Scope, receive: Receive) -> tuple[Receive, str | None]:
    """The field of the body holding a control character, and the body to replay."""
    content_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if scope["method"] in ("GET", "HEAD") or content_type not in (FORM, MULTIPART, JSON):
        return receive, None
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return _replaying(b"", receive, message), None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replay = _replaying(body, receive)
    if not _may_hold_control(body, JSON_CONTROL if content_type == JSON else PERCENT_CONTROL):
        return replay, None
    if content_type == FORM:
        return replay, _in_pairs(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if content_type == JSON:
        try:
            return replay, first_with_control(json.loads(body))
        except (ValueError, RecursionError):  # the handler refuses it as it is
            return replay, None
    return await _in_multipart(scope, body, receive)


async def _in_multipart(scope: Scope, body: bytes, receive: Receive) -> tuple[Receive, str | None]:
    """A multipart form's text fields (a file's bytes are the file's, not text typed)."""
    try:
        form = await Request(scope, _replaying(body, receive)).form()
    except Exception:
        return _replaying(body, receive), None
    try:
        pairs = [(name, value) for name, value in form.multi_items() if isinstance(value, str)]
        return _replaying(body, receive), _in_pairs(pairs)
    finally:
        await form.close()


def _replaying(body: bytes, receive: Receive, last: Message | None = None) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return last or {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
