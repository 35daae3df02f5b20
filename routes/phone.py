"""The secretary's phone in the console: her short-lived SIP credentials, and the banner of a
call ringing her phone."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.voice import calls, credentials
from routes.access import signed_in, user_of
from routes.forms import now
from routes.templating import render


@signed_in()
async def phone_credentials(request: Request) -> Response:
    """`GET /phone/credentials`: a secretary's SIP credentials (owners and admins: 403)."""
    found = credentials.phone_credentials(
        request.app.state.settings, user_of(request), now=now(request)
    )
    return JSONResponse(found.as_json(), headers={"Cache-Control": "no-store"})


@signed_in("secretary")
async def ringing(request: Request) -> Response:
    """`GET /phone/calls/{sip_call_id}`: the ringing banner of a call that rings her phone."""
    async with request.app.state.db.transaction(write=False) as session:
        banner = await calls.ringing_banner(
            session, user_of(request), request.path_params["sip_call_id"], now=now(request)
        )
    return render(request, "partials/ringing.html", {"banner": banner})
