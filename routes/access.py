"""Who may reach a handler: signed in, and of the right role; the rest is told 'not found'."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from console.base.errors import NotFound
from console.people.audit import Actor
from models import User
from routes.forms import now

Endpoint = Callable[[Request], Awaitable[Response]]


def current_user(request: Request) -> User | None:
    return getattr(request.state, "user", None)


def signed_in(*roles: str) -> Callable[[Endpoint], Endpoint]:
    """Send strangers to sign in; a user of another role gets 404, as for a missing page."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            user = current_user(request)
            if user is None:
                target = "/login?next=" + quote(request.url.path)
                if request.headers.get("HX-Request") == "true":
                    return Response(status_code=401, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            if roles and user.role not in roles:
                raise NotFound("Not found.")
            return await endpoint(request)

        return guarded

    return wrap


def user_of(request: Request) -> User:
    """The signed-in user of a handler behind `signed_in`."""
    user = current_user(request)
    assert user is not None, "handler is not behind signed_in()"
    return user


def actor(request: Request) -> Actor:
    """Who acts, when and from where, for the services that keep the audit log."""
    return Actor(user_of(request), now(request), request.state.client_address)


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site, never another host (no open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return default
