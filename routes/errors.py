"""Every refusal becomes its status and a clear message: JSON for machines, a page for people."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.base.db import unavailable
from console.base.errors import ConsoleError, Throttled
from console.base.i18n import current_locale, gettext, pick_locale, using_locale
from routes.middleware import LOCALE_COOKIE
from routes.templating import render

log = logging.getLogger("mazkira")

MACHINE_PREFIXES = ("/api/", "/intake/", "/healthz", "/sip/")
RETRY_AFTER_SECONDS = 5  # while the database is down


def _respond(request: Request, status: int, message: str, field: str | None = None) -> Response:
    if request.url.path.startswith(MACHINE_PREFIXES) or "application/json" in request.headers.get(
        "accept", ""
    ):
        body: dict[str, str] = {"error": message}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=status)
    if request.headers.get("HX-Request") == "true":
        # htmx shows it in the page's flash area instead of replacing what was targeted.
        response = render(request, "partials/flash.html", {"message": message}, status=status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
        return response
    return render(request, "error.html", {"status": status, "message": message}, status=status)


async def console_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConsoleError)
    response = _respond(request, exc.status, exc.translated(), exc.field)
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: gettext("This page does not exist, or it is not yours to see."),
        405: gettext("This address does not accept that kind of request."),
    }
    message = messages.get(exc.status_code, str(exc.detail))
    return _respond(request, exc.status_code, message)


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(request, 500, gettext("Something went wrong on our side. Please try again."))


class WhenDatabaseDown:
    """A request that met the database down or restarting (in a route or in the session
    middleware) answers 503 with Retry-After at once, instead of a 500: the next one, a moment
    later, finds it back (the pool reconnects; nothing to restart). A socket's handshake is
    refused and the page's socket reconnects by itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] in ("http.response.start", "websocket.accept")
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            if started or not unavailable(error):
                raise
            log.warning("database unavailable on %s: %s", scope["path"], error)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013})
                return
            request = Request(scope)
            # The user's language is in the database: a person gets the cookie's, or the default.
            machine = request.url.path.startswith(MACHINE_PREFIXES)
            locale = (
                current_locale() if machine else pick_locale(request.cookies.get(LOCALE_COOKIE))
            )
            with using_locale(locale):
                message = gettext(
                    "The database is not answering right now. Please try again in a moment."
                )
                response = _respond(request, 503, message)
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            await response(scope, receive, send)
