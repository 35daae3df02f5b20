"""The outermost middleware (pure ASGI): every request gets an id (the `X-Request-ID` it came
with when it looks like one, else a new one), answered in the same header and stamped on every
log line written for it (and on the jobs it asks for); and it is counted and timed per route
for `/metrics`, by the route's pattern (`/leads/{lead_id}`), never the raw path."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from console.base.logs import current_request_id, new_request_id
from console.base.metrics import Metrics

HEADER = b"x-request-id"


class Observe:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"").decode("latin-1")
        rid = new_request_id(given)
        token = current_request_id.set(rid)
        status = 500  # what a request that raised past every handler answered
        started = time.perf_counter()

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            current_request_id.reset(token)
            if scope["type"] == "http":
                route = scope.get("route")
                pattern = getattr(route, "path", None) or "unmatched"
                method = scope["method"]
                self.metrics.requests.labels(pattern, method, str(status)).inc()
                self.metrics.latency.labels(pattern, method).observe(time.perf_counter() - started)
