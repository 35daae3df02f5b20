"""Every refusal becomes its status and a clear message: JSON for machines, a page for people."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.errors import ConsoleError, Throttled
from console.i18n import gettext
from routes.templating import render

log = logging.getLogger("mazkira")

MACHINE_PREFIXES = ("/api/", "/intake/", "/healthz")


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
