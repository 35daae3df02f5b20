"""The owner's portal: what was handled for him, his tasks, his rating of a call, his status,
and his own script (the hours editor is routes/hours.py, shared with the agency)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, ConsoleError, Invalid, NotFound
from console.leads import feedback, scripts
from console.people import availability
from console.people.tenancy import get_business, parse_id
from console.screens import portal
from console.screens.portal import ReviewFilters
from console.tasks import task_sla, tasks
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.templating import render

SCRIPT_FIELDS = ("greeting", "questions", "faq", "escalation", "dos", "donts")


@signed_in(Role.OWNER)
async def index(request: Request) -> Response:
    """His status, his open tasks, and the review; htmx (search, pages) gets only the results."""
    filters = ReviewFilters.of(request.query_params)
    async with request.app.state.db.transaction(write=False) as session:
        page = await portal.portal_page(
            session, user_of(request), filters, now=now(request), tasks=not is_htmx(request)
        )
    context = {
        "page": page,
        "review": page.review,
        "now": now(request),
        "partial": is_htmx(request),
    }
    return render(request, "portal/index.html", context, block="results")


@signed_in(Role.OWNER)
async def lead(request: Request) -> Response:
    """A lead as the owner reads it: what was done, its tasks, the comments; he may comment."""
    async with request.app.state.db.transaction() as session:
        view = await portal.owner_lead(session, actor(request), request.path_params["lead_id"])
    return render(request, "portal/lead.html", {"view": view, "now": now(request)})


@signed_in(Role.OWNER)
async def rate(request: Request) -> Response:
    """1–5 stars and a comment on a handled call; htmx gets the row drawn again."""
    form = await request.form()
    interaction_id = parse_id(request.path_params["interaction_id"])
    typed = {"stars": text(form, "stars"), "comment": text(form, "comment")}
    in_lead = bool(text(form, "in_lead"))
    try:
        async with request.app.state.db.transaction() as session:
            await feedback.rate_interaction(
                session, user_of(request), interaction_id, **typed, now=now(request)
            )
            item = await portal.rated_row(session, user_of(request), interaction_id)
    except Invalid as refused:
        return await _rating_refused(request, refused, interaction_id, typed, in_lead=in_lead)
    if is_htmx(request):
        context = {"item": item, "rated": True, "in_lead": in_lead}
        return render(request, "partials/handled_row.html", context)
    return see_other(request, f"/portal/leads/{item.lead_id}#handled-{item.id}")


async def _rating_refused(
    request: Request,
    refused: Invalid,
    interaction_id: uuid.UUID,
    typed: dict[str, str],
    *,
    in_lead: bool,
) -> Response:
    """The row again as typed, the reason beside the stars or the comment (without htmx, his
    lead's page); a call that is no row of his (a message that came in) keeps the refusal."""
    if wants_json(request):
        raise refused
    async with request.app.state.db.transaction(write=False) as session:
        try:
            item = await portal.rated_row(session, user_of(request), interaction_id)
        except NotFound:
            raise refused from None
        context: dict[str, object] = {"item": item, "refused": refused, "typed": typed}
        context |= {"refused_form": "rating", "refused_item": item.id, "in_lead": in_lead}
        if not is_htmx(request):
            view = await portal.owner_lead(session, actor(request), item.lead_id, opened=False)
            context |= {"view": view, "now": now(request)}
            return render(request, "portal/lead.html", context, status=422)
    return render(request, "partials/handled_row.html", context, status=422)


@signed_in(Role.OWNER)
async def acknowledge_task(request: Request) -> Response:
    try:
        async with request.app.state.db.transaction() as session:
            await task_sla.acknowledge_task(
                session, user_of(request), request.path_params["task_id"], now=now(request)
            )
    except Conflict as refused:
        return await _task_card(request, refused)
    return await _task_card(request)


@signed_in(Role.OWNER)
async def finish_task(request: Request) -> Response:
    try:
        async with request.app.state.db.transaction() as session:
            await tasks.set_task_status(
                session, user_of(request), request.path_params["task_id"], "done", now=now(request)
            )
    except Conflict as refused:
        return await _task_card(request, refused)
    return await _task_card(request)


@signed_in(Role.OWNER)
async def comment_on_task(request: Request) -> Response:
    """His comment on a task handed to him; the secretaries read it on the lead page."""
    form = await request.form()
    try:
        async with request.app.state.db.transaction() as session:
            await feedback.comment_on_task(
                session,
                user_of(request),
                request.path_params["task_id"],
                text(form, "body"),
                now=now(request),
                request_key=text(form, "request_key"),
            )
    except Invalid as refused:
        return await _task_card(request, refused, typed_body=text(form, "body"))
    return await _task_card(request)


async def _task_card(
    request: Request, refused: ConsoleError | None = None, typed_body: str = ""
) -> Response:
    """After answering a task: htmx gets its card drawn again, a plain form goes back; a refused
    answer is the card (or, without htmx, the portal) again with the reason in it, 409/422."""
    task_id = request.path_params["task_id"]
    if refused is not None and wants_json(request):
        raise refused
    if refused is None and not is_htmx(request):
        return see_other(request, f"/portal#owner-task-{task_id}")
    async with request.app.state.db.transaction(write=False) as session:
        found = await portal.owner_task(session, user_of(request), task_id)
        page = None
        if refused is not None and not is_htmx(request):
            page = await portal.portal_page(
                session, user_of(request), ReviewFilters.of({}), now=now(request)
            )
    task = found.tasks[0]
    context = {
        "task": task,
        "comments": found.comments.get(task.id, []),
        "now": now(request),
        "refused": refused,
        "typed_body": typed_body,
    }
    status = 200 if refused is None else refused.status
    if page is None:
        return render(request, "partials/owner_task.html", context, status=status)
    context |= {"page": page, "review": page.review, "refused_task": task.id}
    return render(request, "portal/index.html", context, status=status)


@signed_in(Role.OWNER)
async def set_availability(request: Request) -> Response:
    """'In a meeting until 14:00': the secretaries see it, his notices wait for his return."""
    form = await request.form()
    typed = {name: text(form, name) for name in ("kind", "until", "note")}
    try:
        async with request.app.state.db.transaction() as session:
            await availability.set_availability(
                session,
                user_of(request),
                **typed,
                timezone=await portal.owner_timezone(session, user_of(request)),
                now=now(request),
            )
    except Invalid as refused:  # his status again, as typed, the reason beside its field
        if wants_json(request):
            raise
        async with request.app.state.db.transaction(write=False) as session:
            page = await portal.portal_page(
                session, user_of(request), ReviewFilters.of({}), now=now(request)
            )
        context = {"page": page, "review": page.review, "now": now(request)}
        context |= {"refused": refused, "refused_form": "availability", "typed": typed}
        return render(request, "portal/index.html", context, status=422, block="availability_form")
    return see_other(request, "/portal#availability")


async def _script_page(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(
            session, user_of(request), request.path_params["business_id"], "script"
        )
        draft = await scripts.draft_script(session, business.id)
        published = await scripts.published_script(session, business.id)
    base = draft or published
    return {
        "business": business,
        "draft": draft,
        "published": published,
        "typed": scripts.as_draft(base),
        "preview": base,
        "saved": request.query_params.get("saved", ""),
        **extra,
    }


@signed_in(Role.OWNER)
async def script_editor(request: Request) -> Response:
    """His script and FAQ: the draft waiting for the agency, else the published version."""
    return render(request, "portal/script.html", await _script_page(request))


@signed_in(Role.OWNER)
async def save_script(request: Request) -> Response:
    """Preview (htmx, nothing stored), send the draft to the agency, or publish it when the
    agency allows it."""
    form = await request.form()
    typed = scripts.ScriptDraft(**{name: text(form, name) for name in SCRIPT_FIELDS})
    action = text(form, "action", "save")
    try:
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"], "script"
            )
            if action == "preview":
                context = {"business": business, "preview": scripts.preview(typed)}
                return render(request, "portal/script.html", context, block="preview")
            await scripts.save_owner_draft(
                session, actor(request), business, typed, publish=action == "publish"
            )
    except Invalid as refused:  # his script again, as typed, the reason beside its field
        if wants_json(request) or action == "preview":
            raise
        page = await _script_page(request, typed=typed, refused=refused)
        return render(request, "portal/script.html", page, status=422)
    saved = "published" if action == "publish" else "draft"
    return see_other(request, f"/portal/businesses/{business.id}/script?saved={saved}")
