"""The secretary's phone in the console: her short-lived SIP credentials, the banner of a
call ringing her phone, and putting her call through to someone else."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.base.errors import ConsoleError
from console.voice import calls, credentials, transfers
from models import Business
from routes.access import signed_in, user_of
from routes.forms import now, text
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


async def _transfer_panel(
    request: Request,
    sip_call_id: str,
    *,
    typed: str = "",
    chosen: str = "",
    error: ConsoleError | None = None,
    transfer: object = None,
    status: int = 200,
) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        me = user_of(request)
        call = await transfers.her_call(session, me, sip_call_id)
        business = await session.get_one(Business, call.business_id)
        found = await transfers.targets(session, business, now=now(request))
        colleagues = await transfers.secretaries(session, business, me.id, now=now(request))
    context = {
        "call_id": sip_call_id,
        "business": business,
        "targets": found,
        "secretaries": colleagues,
        "typed": typed,
        "chosen": chosen,
        "error": error,
        "transfer": transfer,
    }
    return render(request, "partials/transfer.html", context, status=status)


@signed_in("secretary")
async def transfer_panel(request: Request) -> Response:
    """`GET /phone/transfer/{sip_call_id}`: whom her call may go to, by the owner's status and
    the other secretaries' states."""
    return await _transfer_panel(request, request.path_params["sip_call_id"])


@signed_in("secretary")
async def transfer(request: Request) -> Response:
    """`POST /phone/transfer/{sip_call_id}`: checked and kept; the panel answers with the SIP
    address her phone refers the caller (or calls first) to, or refuses in place."""
    sip_call_id = request.path_params["sip_call_id"]
    form = await request.form()
    typed, kind, chosen = text(form, "number"), text(form, "kind"), text(form, "secretary")
    try:
        async with request.app.state.db.transaction() as session:
            made = await transfers.request(
                session,
                user_of(request),
                sip_call_id,
                typed,
                kind,
                now=now(request),
                secretary=chosen,
            )
    except ConsoleError as refused:
        if refused.status == 404:
            raise
        return await _transfer_panel(
            request, sip_call_id, typed=typed, chosen=chosen, error=refused, status=refused.status
        )
    return await _transfer_panel(request, sip_call_id, typed=typed, transfer=made)
