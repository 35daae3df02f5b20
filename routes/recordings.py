"""Call recordings and voicemail: played and downloaded by whoever may see their lead (404 to
anyone else), in parts for a player that seeks; and a business's recording settings, set by the
agency on the business's page (console/voice/recordings.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from console.agency import admin
from console.base.errors import Invalid, TooLarge, UnsupportedMedia
from console.voice import recordings
from console.voice.recordings import MAX_PART_BYTES
from models import Role
from routes.access import actor, signed_in
from routes.admin import business_page
from routes.forms import is_htmx, see_other, text
from routes.templating import render


@signed_in(Role.SECRETARY, Role.ADMIN, Role.OWNER)
async def play(request: Request) -> Response:
    """`GET /recordings/{id}`: the sound, or the part a Range asks for (206); `?download=1`
    as an attachment."""
    download = request.query_params.get("download") == "1"
    store = request.app.state.recordings
    async with request.app.state.db.transaction() as session:
        part = await recordings.open_for(
            session,
            actor(request),
            store,
            request.path_params["recording_id"],
            range_header=request.headers.get("range", ""),
            download=download,
        )
    recording = part.recording
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(part.end - part.start + 1),
        "Cache-Control": "private, no-store",
    }
    if download:
        name = f"{recording.kind}-{recording.created_at:%Y%m%d-%H%M}.wav"
        headers["Content-Disposition"] = f'attachment; filename="{name}"'
    if part.partial:
        headers["Content-Range"] = f"bytes {part.start}-{part.end}/{part.size}"

    async def body() -> AsyncIterator[bytes]:
        at = part.start
        while at <= part.end:
            last = min(part.end, at + MAX_PART_BYTES - 1)
            yield await store.read(recording.key, at, last)
            at = last + 1

    return StreamingResponse(
        body(),
        status_code=206 if part.partial else 200,
        media_type=recording.content_type,
        headers=headers,
    )


@signed_in(Role.ADMIN)
async def save_settings(request: Request) -> Response:
    """Recording on or off, the announcement and the voicemail greeting: the form comes back in
    place (htmx), with the reason beside the field when refused (413, 415, 422)."""
    form = await request.form()
    sounds: dict[str, bytes | None] = {}
    for name in ("announcement", "greeting"):
        upload = form.get(name)
        sounds[name] = await upload.read() if isinstance(upload, UploadFile) else None
    record_calls = text(form, "record_calls") == "on"
    longest = text(form, "voicemail_max_seconds") if "voicemail_max_seconds" in form else None
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            await recordings.save_settings(
                session,
                actor(request),
                found,
                request.app.state.recordings,
                record_calls=record_calls,
                announcement=sounds["announcement"],
                greeting=sounds["greeting"],
                remove_announcement=text(form, "remove_announcement") == "on",
                voicemail_max_seconds=longest,
            )
    except (Invalid, TooLarge, UnsupportedMedia) as refused:
        context = await business_page(
            request,
            recording_error=refused,
            recording_typed=record_calls,
            recording_typed_longest=longest,
        )
        return render(
            request, "agency/business.html", context, status=refused.status, block="recording"
        )
    if not is_htmx(request):
        return see_other(request, f"/agency/businesses/{found.id}#recording")
    context = await business_page(request, recording_saved=True)
    return render(request, "agency/business.html", context, block="recording")
