"""The alerts panel: SLA warnings and breaches nobody has acknowledged yet."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.screens.alerts_page import alert_rows
from console.sla import sla
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now, see_other
from routes.templating import render


@signed_in(Role.SECRETARY, Role.ADMIN)
async def alert_list(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        rows = await alert_rows(session, user_of(request))
    return render(request, "alerts/index.html", {"rows": rows, "now": now(request)})


@signed_in(Role.SECRETARY, Role.ADMIN)
async def acknowledge(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await sla.acknowledge(
            session, user_of(request), request.path_params["alert_id"], now=now(request)
        )
    return see_other(request, "/alerts")
