"""The user's own settings: personal API tokens."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from console.people import api_tokens
from routes.access import signed_in, user_of
from routes.forms import is_htmx, now, see_other, text
from routes.templating import render

TOKENS_PAGE = "/settings/tokens"


def _tokens_page(request: Request, context: dict[str, Any]) -> Response:
    response = render(request, "settings/tokens.html", context, block="tokens")
    response.headers["Cache-Control"] = "no-store"  # it may hold a new secret
    return response


@signed_in()
async def tokens(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        found = await api_tokens.tokens_of(session, user_of(request))
    return _tokens_page(request, {"tokens": found})


@signed_in()
async def create_token(request: Request) -> Response:
    """Make a token and show its secret, this once."""
    form = await request.form()
    user = user_of(request)
    async with request.app.state.db.transaction() as session:
        made = await api_tokens.create_token(session, user, text(form, "name"), now=now(request))
        found = await api_tokens.tokens_of(session, user)
    context = {"tokens": found, "new_secret": made.secret, "new_name": made.token.name}
    return _tokens_page(request, context)


@signed_in()
async def revoke_token(request: Request) -> Response:
    user = user_of(request)
    async with request.app.state.db.transaction() as session:
        await api_tokens.revoke_token(
            session, user, request.path_params["token_id"], now=now(request)
        )
        found = await api_tokens.tokens_of(session, user)
    if is_htmx(request):
        return _tokens_page(request, {"tokens": found})
    return see_other(request, TOKENS_PAGE)
