"""The SIP server's requests (Kamailio, deploy/sip): whom to ring, and what happened to a call.
Both are signed with the secret we share; refusals are plain statuses it turns into SIP ones."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from console.base.characters import without_controls
from console.voice import calls, signatures, voicemail
from routes.forms import now


async def _signed_params(request: Request) -> dict[str, list[str]]:
    body = await request.body()
    signatures.verify(
        request.app.state.settings,
        body,
        request.headers.get("x-mazkira-timestamp", ""),
        request.headers.get("x-mazkira-signature", ""),
        now=now(request),
    )
    fields = parse_qs(body.decode("utf-8", "replace"))
    # signed as sent (a carrier's caller name may hold anything); kept without control characters
    return {name: [without_controls(value) for value in values] for name, values in fields.items()}


async def route(request: Request) -> Response:
    """`POST /sip/route`: a call's next step, as `action=ring;users=…;seconds=…` and the like."""
    question = calls.RouteQuestion.of(await _signed_params(request))
    answer = await calls.route_call(request.app.state.db, question, now=now(request))
    return PlainTextResponse(answer)


async def event(request: Request) -> Response:
    """`POST /sip/events`: answered, ended, cancelled or failed; a repeat changes nothing. A
    recorded call's announcement is played once it is answered, and its recording (or a
    voicemail) collected once it ends, after this answer (console/voice/voicemail.py)."""
    happened = calls.CallEvent.of(await _signed_params(request))
    db, media = request.app.state.db, request.app.state.media
    async with db.transaction() as session:
        changed = await calls.record_event(session, happened, now=now(request))
    task = None
    if media is not None and happened.event == "answered" and changed:
        task = BackgroundTask(voicemail.announce, db, media, happened.call_id, happened.from_tag)
    if media is not None and happened.event == "ended":
        kind = await voicemail.due(db, happened.call_id)
        if kind:
            task = BackgroundTask(
                voicemail.collect, db, media, happened.call_id, kind, now=now(request)
            )
    return PlainTextResponse("recorded" if changed else "unchanged", background=task)


async def answer_voicemail(request: Request) -> Response:
    """`POST /sip/voicemail`: the SDP to answer an overflowed caller with, the business's
    greeting playing to them; 409 when there is no voicemail for this call."""
    params = await _signed_params(request)
    sdp = (params.get("sdp") or [""])[0]
    answered = await voicemail.answer(
        request.app.state.db,
        request.app.state.media,
        calls.call_id_of(params),
        (params.get("from_tag") or [""])[0][:128],
        sdp,
    )
    return PlainTextResponse(answered)
