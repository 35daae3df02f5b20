"""The secretary's workspace: the inbox, a new call, the lead page, claiming and the pipeline."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, Invalid
from console.intake import new_calls
from console.intake.arrivals import NewLead
from console.leads import leads
from console.leads.leads import InboxFilters
from console.leads.surveys import SurveyLinks
from console.people.tenancy import visible_businesses
from console.screens.lead_page import lead_view
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)


@signed_in(*WORKERS)
async def inbox(request: Request) -> Response:
    """One queue of open leads across every business she serves; htmx gets only the queue
    ("load more" asks for the one after a place and takes its rows)."""
    params = request.query_params
    filters = InboxFilters(
        **{k: params.get(k, "") for k in ("business", "channel", "stage", "holder")}
    )
    after = params.get("after", "")  # "load more": the rows below this place
    async with request.app.state.db.transaction(write=False) as session:
        queue = await leads.inbox(session, user_of(request), filters, after)
    context = {"queue": queue, "filters": filters, "now": now(request)}
    return render(request, "inbox/index.html", context, block="queue")


@signed_in(*WORKERS)
async def new_lead_form(request: Request) -> Response:
    chosen = request.query_params.get("business", "")
    return await _new_call_page(request, {"business_id": chosen, "priority": "normal"})


async def _new_call_page(
    request: Request, typed: dict[str, str], refused: Invalid | None = None
) -> Response:
    """The new-call screen; refused, its form again as typed, the reason beside the field."""
    async with request.app.state.db.transaction(write=False) as session:
        businesses = await visible_businesses(session, user_of(request))
    context = {"businesses": businesses, "typed": typed, "refused": refused}
    status = refused.status if refused else 200
    return render(request, "leads/new.html", context, status=status, block="new_call_form")


NEW_CALL_FIELDS = ("business_id", "phone", "email", "name", "channel", "subject", "message")


@signed_in(*WORKERS)
async def create_lead(request: Request) -> Response:
    """Start a lead from a call she is taking: find or add the caller, open the lead as hers
    with the call log running."""
    form = await request.form()
    typed = {name: text(form, name) for name in (*NEW_CALL_FIELDS, "priority")}
    given = {name: value for name, value in typed.items() if value and name != "business_id"}
    new = NewLead(business_id=typed["business_id"], **given)
    try:
        async with request.app.state.db.transaction() as session:
            call = await new_calls.open_and_log(session, user_of(request), new, now=now(request))
    except Invalid as refused:
        if wants_json(request):
            raise
        return await _new_call_page(request, typed, refused)
    return see_other(request, f"/leads/{call.lead_id}#call-log")


@signed_in(*WORKERS, Role.OWNER)
async def show_lead(request: Request) -> Response:
    """The lead page: script, call log, contact card and history, tasks (the view is audited)."""
    db, viewer = request.app.state.db, actor(request)
    async with db.transaction(write=False) as session:
        view = await lead_view(
            session,
            viewer,
            request.path_params["lead_id"],
            reply_template=request.app.state.settings.whatsapp_reply_template,
            opened=False,
        )
    # The opening written after the page's reads (SQLite's one writer is not held through
    # them), with the other openings of the moment in one transaction.
    await request.app.state.views.lead_viewed(view.lead.id, view.lead.business_id, actor=viewer)
    context = {"view": view, "now": now(request), "book": request.query_params.get("book") == "1"}
    return render(request, "leads/show.html", {**context, **_call_settings(request)})


def _call_settings(request: Request) -> dict[str, int]:
    """What the call log's page needs to know of the settings: when a silent call stops."""
    return {"idle_seconds": request.app.state.settings.call_idle_minutes * 60}


async def refused_on_lead(
    request: Request,
    refused: Invalid | Conflict,
    form: str,
    typed: Mapping[str, object],
    lead_id: str | uuid.UUID | None = None,
) -> Response:
    """A form of the lead page refused: the page again (htmx: only that form's block), as she
    typed it, the reason beside its field, with the refusal's status."""
    if wants_json(request):
        raise refused
    context = {
        **await _lead_page_again(request, lead_id or request.path_params["lead_id"]),
        "refused": refused,
        "refused_form": form,
        "typed": typed,
    }
    block = "appointments" if form == "appointment" else f"{form}_form"
    return render(request, "leads/show.html", context, status=refused.status, block=block)


async def lead_form_done(
    request: Request, form: str, lead_id: str, anchor: str = "", **done: object
) -> Response:
    """A form of the lead page did its work. htmx: that form again, fresh for the next one and
    saying what was done, with the part of the page it changed out of band; the rest of the page
    (a call being logged beside it) stays exactly as she left it. Navigating the whole page
    instead raced her typing: an outcome chosen while the page came back was lost. A plain POST
    goes to the page."""
    if not is_htmx(request):
        return see_other(request, f"/leads/{lead_id}{anchor}")
    context = {**await _lead_page_again(request, lead_id), "done_form": form, **done}
    return render(request, "leads/show.html", context, block=f"{form}_form")


async def _lead_page_again(request: Request, lead_id: str | uuid.UUID) -> dict[str, object]:
    """What the lead page's template needs to draw one of its forms again; not an opening of
    the lead (she is on the page already)."""
    async with request.app.state.db.transaction(write=False) as session:
        view = await lead_view(
            session,
            actor(request),
            lead_id,
            reply_template=request.app.state.settings.whatsapp_reply_template,
            opened=False,
        )
    return {"view": view, "now": now(request), **_call_settings(request)}


@signed_in(*WORKERS)
async def claim(request: Request) -> Response:
    """Take a lead; the loser of a race reads who took it, where she pressed."""
    try:
        async with request.app.state.db.transaction() as session:
            lead = await leads.claim_lead(
                session, user_of(request), request.path_params["lead_id"], now=now(request)
            )
    except Conflict as refused:
        if not is_htmx(request):
            raise
        response = render(
            request, "partials/flash.html", {"message": refused.translated()}, status=409
        )
        response.headers["HX-Reswap"] = "outerHTML"  # in place of the form she pressed
        return response
    return see_other(request, f"/leads/{lead.id}")


@signed_in(*WORKERS)
async def ask_to_take_over(request: Request) -> Response:
    """Ask the holder for the lead; her answer comes live to this page."""
    lead_id = request.path_params["lead_id"]
    inline = (await request.form()).get("where") == "form"  # asked from a refused form
    async with request.app.state.db.transaction() as session:
        lead = await leads.ask_to_take_over(session, user_of(request), lead_id, now=now(request))
    if lead.claimed_by_id == user_of(request).id or not is_htmx(request):
        return see_other(request, f"/leads/{lead.id}")
    asked = {"kind": "sent", "holder_name": lead.claimed_by.name if lead.claimed_by else ""}
    context = {"lead_id": lead.id, "takeover": asked, "inline": inline}
    return render(request, "partials/takeover.html", context)


@signed_in(*WORKERS)
async def answer_takeover(request: Request) -> Response:
    """The holder gives the lead to the one who asked, or keeps it."""
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        lead = await leads.answer_takeover(
            session,
            user_of(request),
            request.path_params["lead_id"],
            text(form, "asker"),
            give=text(form, "answer") == "give",
            now=now(request),
        )
    if text(form, "answer") == "give" or not is_htmx(request):
        return see_other(request, f"/leads/{lead.id}")
    return render(request, "partials/takeover.html", {"lead_id": lead.id})


@signed_in(*WORKERS)
async def release(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await leads.release_lead(
            session, user_of(request), request.path_params["lead_id"], now=now(request)
        )
    return see_other(request, "/inbox")


@signed_in(Role.ADMIN)
async def reassign(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        lead = await leads.reassign_lead(
            session,
            user_of(request),
            request.path_params["lead_id"],
            text(form, "secretary"),
            now=now(request),
        )
    return see_other(request, f"/leads/{lead.id}")


@signed_in(*WORKERS)
async def move_stage(request: Request) -> Response:
    form = await request.form()
    typed = {name: text(form, name) for name in ("stage", "deal_value", "lost_reason")}
    try:
        async with request.app.state.db.transaction() as session:
            lead = await leads.move_stage(
                session,
                user_of(request),
                request.path_params["lead_id"],
                **typed,
                now=now(request),
                survey_links=SurveyLinks.of(request.app.state.settings),
            )
    except (Invalid, Conflict) as refused:
        return await refused_on_lead(request, refused, "stage", typed)
    return see_other(request, f"/leads/{lead.id}")
