"""A push service on 127.0.0.1 that speaks the real protocol, for tests of Web Push.

It hands out browsers (`new_browser`): a P-256 key pair and a 16-byte secret made here, and an
endpoint on this server, as a browser's push manager would after subscribing with an
applicationServerKey. A delivery (RFC 8030: POST to the endpoint) must carry `TTL`, an
`Urgency` of the four RFC 8030 values if any, `Content-Encoding: aes128gcm`, and
`Authorization: vapid t=<JWT>, k=<key>` (RFC 8292) whose key is the one the browser subscribed
with and whose ES256 token verifies with it, names this origin as `aud`, expires within 24
hours and gives a `sub` contact; otherwise it answers 400, 401 or 403 as a push service does.
The body is decrypted (RFC 8291, aes128gcm) with the browser's private key and secret, so a
test reads the plaintext the browser's service worker would get. `answer_next` makes the next
deliveries to a browser answer another status (410 gone, 503, 429).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes import FakeHttpServer

URGENCIES = ("very-low", "low", "normal", "high")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One subscribed browser: what it keeps secret and what it gives the console."""

    token: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str
    answers: deque[int] = field(default_factory=deque)

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)

    def subscription(self) -> dict[str, Any]:
        """As `PushSubscription.toJSON()` gives it."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }


@dataclass(frozen=True)
class Delivery:
    token: str
    ttl: int
    urgency: str
    claims: dict[str, Any]
    message: dict[str, Any]  # the decrypted payload, as the service worker reads it


class PushService(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__([Route("/push/{token}", self.deliver, methods=["POST"])])
        self.browsers: dict[str, Browser] = {}
        self.delivered: list[Delivery] = []
        self.refused: list[tuple[int, str]] = []

    def new_browser(self, application_server_key: str) -> Browser:
        token = secrets.token_urlsafe(24)
        browser = Browser(
            token=token,
            endpoint=f"{self.base_url}/push/{token}",
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=secrets.token_bytes(16),
            application_server_key=application_server_key,
        )
        self.browsers[token] = browser
        return browser

    def answer_next(self, browser: Browser, *statuses: int) -> None:
        browser.answers.extend(statuses)

    def _refuse(self, status: int, why: str) -> Response:
        self.refused.append((status, why))
        return PlainTextResponse(why, status_code=status)

    async def deliver(self, request: Request) -> Response:
        await self.record(request)
        browser = self.browsers.get(request.path_params["token"])
        if browser is None:
            return self._refuse(404, "no such subscription")
        if browser.answers:
            status = browser.answers.popleft()
            if status == 410:
                del self.browsers[browser.token]
            return PlainTextResponse("as the test asked", status_code=status)
        headers = request.headers
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            return self._refuse(400, "TTL is required (RFC 8030 5.2)")
        urgency = headers.get("urgency", "normal")
        if urgency not in URGENCIES:
            return self._refuse(400, f"unknown Urgency {urgency!r}")
        if headers.get("content-encoding") != "aes128gcm":
            return self._refuse(415, "only aes128gcm (RFC 8188) is accepted")
        claims, why = self._vapid(headers.get("authorization", ""), browser)
        if claims is None:
            return self._refuse(403 if why.startswith("403") else 401, why)
        plaintext = http_ece.decrypt(
            await request.body(),
            private_key=browser.private_key,
            auth_secret=browser.auth,
            version="aes128gcm",
        )
        self.delivered.append(
            Delivery(browser.token, int(ttl), urgency, claims, json.loads(plaintext))
        )
        location = f"{self.base_url}/message/{secrets.token_urlsafe(12)}"
        return Response(status_code=201, headers={"Location": location})

    def _vapid(self, header: str, browser: Browser) -> tuple[dict[str, Any] | None, str]:
        """RFC 8292: `vapid t=<JWT>, k=<key>`; the claims, or why it is refused."""
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "vapid":
            return None, "401 no vapid Authorization"
        parts = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part.strip())
        if "t" not in parts or "k" not in parts:
            return None, "401 vapid needs t and k"
        if parts["k"] != browser.application_server_key:
            return None, "403 not the key this browser subscribed with"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
        try:
            claims = jwt.decode(
                parts["t"], key=public, algorithms=["ES256"], audience=self.base_url
            )
        except jwt.PyJWTError as error:
            return None, f"401 token refused: {error}"
        if not 0 < claims.get("exp", 0) - time.time() <= 24 * 3600:
            return None, "401 exp must be within 24 hours"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return None, "401 sub must be a mailto: or https: contact"
        return claims, ""
