"""The supervisor's wallboard: a live page (the `wallboard` kind in routes/live.py) whose board
is fetched again, as a fragment, when the server says something it shows has changed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.screens.wallboard import on_duty, wallboard
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now
from routes.templating import render


@signed_in(Role.ADMIN)
async def page(request: Request) -> Response:
    """Open leads, oldest waiting, alerts per business; who is on duty and on what."""
    online = on_duty(getattr(request.app.state, "hub", None))
    async with request.app.state.db.transaction(write=False) as session:
        board = await wallboard(session, user_of(request), now=now(request), online=online)
    return render(request, "agency/wallboard.html", {"board": board}, block="board")
