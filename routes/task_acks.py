"""An owner answers a hand-off from the link in his message, without signing in: the page asks
(GET changes nothing), its button posts. The signed token in the path is the proof, so these
posts need no session and no CSRF token (routes/middleware.py exempts /ack/)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict
from console.base.i18n import addressing, pick_locale, using_locale
from console.tasks.task_acks import apply_link, link_view
from routes.forms import now, see_other
from routes.middleware import LOCALE_COOKIE
from routes.templating import render

# The token must not leak to other sites through Referer, nor stay in a shared cache.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


async def page(request: Request) -> Response:
    """What the link does, and how the task stands."""
    async with request.app.state.db.transaction(write=False) as session:
        view = await link_view(
            session, _secret(request), request.path_params["token"], now=now(request)
        )
    locale = pick_locale(request.cookies.get(LOCALE_COOKIE), view.locale)
    with using_locale(locale), addressing(view.task.assignee.addressed_as):
        response = render(request, "tasks/ack.html", {"view": view, "now": now(request)})
    response.headers.update(PRIVATE)
    return response


async def confirm(request: Request) -> Response:
    """Mark it seen or done, then show the page again (a repeat changes nothing; a cancelled
    task: the page again, 409, saying so)."""
    try:
        async with request.app.state.db.transaction() as session:
            await apply_link(
                session, _secret(request), request.path_params["token"], now=now(request)
            )
    except Conflict as refused:  # cancelled meanwhile: the page, which says so
        response = await page(request)
        response.status_code = refused.status
        return response
    response = see_other(request, request.url.path)
    response.headers.update(PRIVATE)
    return response


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)
