"""A secretary's state for calls: shown and set from the top bar (and its keys)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import ConsoleError
from console.voice import states
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now, text
from routes.templating import render


@signed_in(Role.SECRETARY)
async def agent_state(request: Request) -> Response:
    """Her state now and the buttons to change it (the top bar fetches this block)."""
    user = user_of(request)
    async with request.app.state.db.transaction(write=False) as session:
        standing = (await states.standings(session, [user.id], now=now(request)))[user.id]
    context = {"standing": standing, "now": now(request)}
    return render(request, "agents/state.html", context, block="agent_state")


@signed_in(Role.SECRETARY)
async def choose_state(request: Request) -> Response:
    """Available, a break (with its reason) or offline; a refusal shows beside the buttons."""
    form, user, moment = await request.form(), user_of(request), now(request)
    error, status = None, 200
    try:
        async with request.app.state.db.transaction() as session:
            await states.choose(
                session, user.id, text(form, "state"), text(form, "reason"), now=moment
            )
    except ConsoleError as refused:
        error, status = refused, refused.status
    async with request.app.state.db.transaction(write=False) as session:
        standing = (await states.standings(session, [user.id], now=moment))[user.id]
    context = {"standing": standing, "now": moment, "error": error, "typed": form}
    return render(request, "agents/state.html", context, status=status, block="agent_state")
