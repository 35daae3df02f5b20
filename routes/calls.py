"""The live call log: start, autosave while she types, wrap up; notes; hand-offs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, Invalid
from console.leads import calls, replies
from console.leads.call_notices import CallLinks
from console.tasks import tasks
from console.tasks.task_links import TaskLinks
from models import Role
from routes.access import signed_in, user_of
from routes.forms import is_htmx, now, prefixed, see_other, text
from routes.leads import lead_form_done, refused_on_lead
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)


@signed_in(*WORKERS)
async def start(request: Request) -> Response:
    form = await request.form()
    kind = text(form, "kind", "inbound_call")
    try:
        async with request.app.state.db.transaction() as session:
            call = await calls.start_interaction(
                session,
                user_of(request),
                request.path_params["lead_id"],
                kind=kind,
                now=now(request),
            )
    except (Invalid, Conflict) as refused:
        return await refused_on_lead(request, refused, "start", {"kind": kind})
    return see_other(request, f"/leads/{call.lead_id}#call-log")


@signed_in(*WORKERS)
async def autosave(request: Request) -> Response:
    """Called every few seconds and on blur while she types; answers with the saved time."""
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        call = await calls.autosave(
            session,
            user_of(request),
            request.path_params["call_id"],
            notes=text(form, "notes"),
            summary=text(form, "summary"),
            answers=prefixed(form, "answers"),
            now=now(request),
            still_here=text(form, "still_here") == "1",
            idle=request.app.state.settings.call_idle,
        )
    if request.headers.get("HX-Request") != "true":
        return see_other(request, f"/leads/{call.lead_id}#call-log")
    return render(request, "partials/saved.html", {"saved_at": call.updated_at})


@signed_in(*WORKERS)
async def wrap_up(request: Request) -> Response:
    """End the call; an outcome that set a meeting opens the appointment form. Refused, the
    call log comes back in place as typed, the reason beside the answer it names."""
    form = await request.form()
    typed = {name: text(form, name) for name in ("notes", "summary", "outcome")}
    answers = prefixed(form, "answers")
    try:
        async with request.app.state.db.transaction() as session:
            done = await calls.wrap_up(
                session,
                user_of(request),
                request.path_params["call_id"],
                **typed,
                answers=answers,
                now=now(request),
                idle=request.app.state.settings.call_idle,
                call_links=CallLinks.of(request.app.state.settings),
            )
    except (Invalid, Conflict) as refused:
        return await refused_call(request, refused, {**typed, "answers": answers})
    if done.moved_to == "meeting":
        return see_other(request, f"/leads/{done.call.lead_id}?book=1#appointments")
    return see_other(request, f"/leads/{done.call.lead_id}")


async def refused_call(
    request: Request, refused: Invalid | Conflict, typed: dict[str, object]
) -> Response:
    """The call log again (htmx: in place of itself), as she typed it; a call wrapped up
    already has no log to show, and says so in the page's flash."""
    async with request.app.state.db.transaction(write=False) as session:
        call = await calls.own_draft(session, user_of(request), request.path_params["call_id"])
    response = await refused_on_lead(request, refused, "call", typed, lead_id=call.lead_id)
    if is_htmx(request):
        response.headers["HX-Retarget"] = "#call-form"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


@signed_in(*WORKERS)
async def add_note(request: Request) -> Response:
    form = await request.form()
    typed = {name: text(form, name) for name in ("notes", "request_key")}
    try:
        async with request.app.state.db.transaction() as session:
            note = await calls.add_note(
                session,
                user_of(request),
                request.path_params["lead_id"],
                text=typed["notes"],
                now=now(request),
                request_key=typed["request_key"],
            )
    except (Invalid, Conflict) as refused:
        return await refused_on_lead(request, refused, "note", typed)
    return see_other(request, f"/leads/{note.lead_id}")


@signed_in(*WORKERS)
async def reply(request: Request) -> Response:
    """Answer the contact on WhatsApp, SMS or e-mail; sent by the notification job."""
    form = await request.form()
    typed = {name: text(form, name) for name in ("channel", "text", "request_key")}
    try:
        async with request.app.state.db.transaction() as session:
            sent = await replies.send_reply(
                session,
                user_of(request),
                request.path_params["lead_id"],
                channel=typed["channel"],
                text=typed["text"],
                template=request.app.state.settings.whatsapp_reply_template,
                now=now(request),
                request_key=typed["request_key"],
            )
    except (Invalid, Conflict) as refused:
        return await refused_on_lead(request, refused, "reply", typed)
    return see_other(request, f"/leads/{sent.lead_id}")


@signed_in(*WORKERS)
async def hand_off(request: Request) -> Response:
    """A follow-up task for the owner or another secretary, from the lead page."""
    form = await request.form()
    names = ("assignee_id", "title", "due", "details", "priority", "request_key")
    typed = {name: text(form, name) for name in names}
    handoff = tasks.HandOff(**{**typed, "priority": typed["priority"] or "normal"})
    try:
        async with request.app.state.db.transaction() as session:
            task = await tasks.hand_off(
                session,
                user_of(request),
                request.path_params["lead_id"],
                handoff,
                now=now(request),
                links=TaskLinks.of(request.app.state.settings),
            )
    except (Invalid, Conflict) as refused:
        return await refused_on_lead(request, refused, "handoff", typed)
    return await lead_form_done(
        request, "handoff", str(task.lead_id), f"#lead-tasks-{task.lead_id}", task_id=task.id
    )
