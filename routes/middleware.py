"""Every request passes here: body size, security headers, the session, the language and CSRF."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from hmac import compare_digest
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any
from urllib.parse import parse_qs, urlsplit

from itsdangerous import BadSignature, Signer
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from console.base import i18n
from console.base.config import Settings
from console.base.db import Database
from console.people import auth

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "mazkira_session"
ANON_COOKIE = "mazkira_csrf"
LOCALE_COOKIE = "mazkira_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Webhooks and the bearer-token API prove who they are by signature or token, not by cookie;
# so does an owner's signed task link, a customer's survey link and a contact's link to his
# meeting (the token in the path), and the SIP server (signed with the secret it shares with us).
CSRF_EXEMPT_PREFIXES = ("/intake/", "/api/", "/ack/", "/survey/", "/meeting/", "/sip/")
# The API (bearer token) and the webhooks (signature or key) need no session lookup, no cookies.
NO_SESSION_PREFIXES = (
    "/static/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/",
    "/intake/",
    "/calendar/",
    "/sip/",
)

# Signed links carry their token in the path (set-password, task, survey, calendar feed, meeting).
SIGNED_LINK = re.compile(r"^(/(?:invite|ack|survey|calendar|meeting)/)[^/?#]+")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'; worker-src 'self'; manifest-src 'self'"
)


def content_security_policy(settings: Settings) -> str:
    """The policy, with the SIP server's WebSocket allowed when the console is a phone."""
    if not (settings.sip_secret and settings.sip_ws_url):
        return CONTENT_SECURITY_POLICY
    parts = urlsplit(settings.sip_ws_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    return CONTENT_SECURITY_POLICY.replace("connect-src 'self'", f"connect-src 'self' {origin}")


class BodyTooLarge(Exception):
    pass


class RedactSignedLinks(logging.Filter):
    """uvicorn's access line is (client, method, path, version, status): a signed link's token
    would give whoever reads the log the link itself, so the line keeps the path without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and isinstance(args[2], str):
            record.args = (*args[:2], SIGNED_LINK.sub(r"\1[redacted]", args[2]), *args[3:])
        return True


def redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(found, RedactSignedLinks) for found in access.filters):
        access.addFilter(RedactSignedLinks())


def needs_csrf(scope: Scope) -> bool:
    """A state-changing request riding on the cookie; webhooks and the API prove themselves."""
    return (
        scope["type"] == "http"
        and scope["method"] not in SAFE_METHODS
        and not scope["path"].startswith(CSRF_EXEMPT_PREFIXES)
    )


def client_address(scope: Scope, trusted: tuple[IPv4Network | IPv6Network, ...]) -> str:
    """The client's address: X-Forwarded-For is believed only hop by hop from trusted proxies."""
    peer = (scope.get("client") or ("", 0))[0] or ""
    if not trusted:
        return str(peer)
    hops = [h.strip() for h in Headers(scope=scope).get("x-forwarded-for", "").split(",")]
    believed = str(peer)
    for hop in reversed([h for h in hops if h]):
        try:
            if not any(ip_address(believed) in network for network in trusted):
                return believed
            ip_address(hop)
        except ValueError:
            return believed
        believed = hop
    return believed


def too_large(scope: Scope) -> Response:
    message = "The request body is too large."
    if scope["path"].startswith("/api/"):
        return JSONResponse({"error": message}, status_code=413)
    return PlainTextResponse(message, 413)


class Guard:
    """Refuses oversized bodies with 413 and adds the security headers to every response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = settings.max_body_bytes
        self.https = settings.https
        self.policy = content_security_policy(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await too_large(scope)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", self.policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if not scope["path"].startswith("/static/"):
                    # pages, fragments, exports and downloads hold a business's data: no copy
                    # is kept by the browser or a proxy (a response may choose its own)
                    headers.setdefault("Cache-Control", "no-store")
                if self.https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            if started:
                raise
            response = too_large(scope)
            await response(scope, receive, send_with_headers)


class Cookies:
    """The console's cookies: a signed session token, the pre-login CSRF token, the language."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signer = Signer(settings.secret_key, salt="mazkira.session")

    def unsign(self, value: str | None) -> str | None:
        if not value:
            return None
        try:
            return self.signer.unsign(value).decode()
        except BadSignature:
            return None

    def cookie(self, name: str, value: str, *, max_age: int | None) -> str:
        parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Lax"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.settings.https:
            parts.append("Secure")
        return "; ".join(parts)

    def session(self, token: str) -> str:
        signed = self.signer.sign(token).decode()
        return self.cookie(
            SESSION_COOKIE, signed, max_age=self.settings.session_absolute_hours * 3600
        )

    def cleared(self, name: str) -> str:
        return self.cookie(name, "", max_age=0)

    def locale(self, locale: str) -> str:
        return self.cookie(LOCALE_COOKIE, locale, max_age=365 * 24 * 3600)


class Sessions:
    """Loads the signed-in user, picks the language, and checks CSRF on state-changing requests."""

    def __init__(self, app: ASGIApp, settings: Settings, db: Database, cookies: Cookies) -> None:
        self.app = app
        self.settings = settings
        self.db = db
        self.cookies = cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"} or scope["path"].startswith(
            NO_SESSION_PREFIXES
        ):
            await self.app(scope, receive, send)
            return
        request = HTTPConnection(scope)
        state = scope.setdefault("state", {})
        now = scope["app"].state.clock.now()  # the clock sign-in used (a test moves it)
        state["client_address"] = client_address(scope, self.settings.trusted_proxies)
        state["session_id"] = None
        user = None
        token = self.cookies.unsign(request.cookies.get(SESSION_COOKIE))
        if token:
            async with self.db.lone_read() as session:  # one statement
                loaded = await auth.load_session(session, self.settings, token, now=now)
            if loaded:
                record, user = loaded
                state["session_id"] = record.id
                state["csrf_token"] = record.csrf_token
                if auth.needs_touch(record, now):
                    async with self.db.transaction() as session:
                        await auth.touch_session(session, record.id, now=now)
        state["user"] = user
        new_anon = None
        if user is None:
            anon = request.cookies.get(ANON_COOKIE, "")
            if len(anon) < 32:
                anon = new_anon = secrets.token_urlsafe(32)
            state["csrf_token"] = anon
        i18n.set_locale(
            i18n.pick_locale(request.cookies.get(LOCALE_COOKIE), user.locale if user else None)
        )
        i18n.set_form(user.addressed_as if user else None)
        if needs_csrf(scope):
            receive, provided = await self.csrf_from(scope, receive)
            expected = state["csrf_token"]
            if new_anon or not provided or not compare_digest(provided, expected):
                await self.refuse_csrf(scope, receive, send)
                return

        async def send_with_cookie(message: Message) -> None:
            if new_anon and message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.append(
                    "Set-Cookie", self.cookies.cookie(ANON_COOKIE, new_anon, max_age=None)
                )
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def csrf_from(self, scope: Scope, receive: Receive) -> tuple[Receive, str]:
        """The token from the header, or from the form body (which is then replayed to the app)."""
        headers = Headers(scope=scope)
        if headers.get("x-csrf-token"):
            return receive, headers["x-csrf-token"]
        content_type = headers.get("content-type", "")
        if not content_type.startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            return receive, ""
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if content_type.startswith("application/x-www-form-urlencoded"):
            fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
            provided = fields.get("csrf_token", [""])[0]
        else:
            form = await Request(scope, replay).form()
            value = form.get("csrf_token")
            provided = value if isinstance(value, str) else ""
            await form.close()
            replayed = False
        return replay, provided

    async def refuse_csrf(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = i18n.gettext(
            "This form has expired or did not come from Mazkira. Reload the page and try again."
        )
        await PlainTextResponse(message, 403)(scope, receive, send)
