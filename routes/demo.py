"""The demo's own pages: the outbox of what it would have sent (demo mode only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import NotFound
from console.demo.outbox import outbox as outbox_messages
from models import Role
from routes.access import signed_in
from routes.templating import render


@signed_in(Role.ADMIN)
async def outbox(request: Request) -> Response:
    """What owners and customers would have received, newest first."""
    if not request.app.state.settings.demo_mode:
        raise NotFound("Not found.")
    async with request.app.state.db.transaction(write=False) as session:
        messages = await outbox_messages(session)
    return render(request, "demo/outbox.html", {"messages": messages})
