"""The agency's overview (the secretary's home is the inbox, the owner's routes/portal.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.agency.admin import staffing_gaps
from console.screens.overview import agency_overview
from models import Role
from routes.access import signed_in, user_of
from routes.templating import render


@signed_in(Role.ADMIN)
async def agency(request: Request) -> Response:
    """The agency's overview: its businesses and people."""
    async with request.app.state.db.transaction(write=False) as session:
        overview = await agency_overview(session, user_of(request))
        gaps = await staffing_gaps(session)
    return render(request, "agency/index.html", {"overview": overview, "gaps": gaps})
