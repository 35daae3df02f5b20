"""The scripts editor: edit a draft, preview it as the secretary will see it, publish it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.leads import canned_replies, scripts
from console.people.tenancy import get_business
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import now, see_other, text, wants_json
from routes.templating import render

FIELDS = ("greeting", "questions", "faq", "escalation", "dos", "donts")


async def _editor_page(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        draft = await scripts.draft_script(session, business.id)
        author = await scripts.draft_author(session, draft)
        versions = await scripts.script_versions(session, business.id)
        replies = await canned_replies.canned_replies(session, business.id)
    base = draft or (versions[0] if versions else None)
    return {
        "business": business,
        "draft": draft,
        "draft_author": author,
        "versions": versions,
        "typed": scripts.as_draft(base),
        "preview": base,
        "replies": replies,
        **extra,
    }


@signed_in(Role.ADMIN)
async def editor(request: Request) -> Response:
    return render(request, "agency/script.html", await _editor_page(request))


@signed_in(Role.ADMIN)
async def save(request: Request) -> Response:
    """Preview (htmx, nothing stored), save the draft, or save and publish it."""
    form = await request.form()
    typed = scripts.ScriptDraft(**{name: text(form, name) for name in FIELDS})
    action = text(form, "action", "save")
    try:
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            if action == "preview":
                preview = scripts.preview(typed)
                return render(request, "agency/script.html", {"preview": preview}, block="preview")
            await scripts.save_script(
                session, actor(request), business, typed, publish=action == "publish"
            )
    except Invalid as refused:  # the editor again, as typed, the reason beside its field
        if wants_json(request) or action == "preview":
            raise
        context = await _editor_page(request, typed=typed, refused=refused)
        return render(request, "agency/script.html", context, status=422)
    return see_other(request, f"/agency/businesses/{business.id}/script")


@signed_in(Role.ADMIN)
async def owner_may_publish(request: Request) -> Response:
    """Whether the business's owner publishes his script edits himself."""
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await scripts.set_owner_may_publish(
            session, actor(request), business, text(form, "allowed") == "1"
        )
    return see_other(request, f"/agency/businesses/{business.id}/script")


@signed_in(Role.ADMIN)
async def save_reply(request: Request) -> Response:
    """Add a canned reply, or change the one with the same title and language."""
    form = await request.form()
    typed = {name: text(form, name) for name in ("locale", "title", "body")}
    try:
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            await canned_replies.save_canned_reply(
                session, business, **typed, now=now(request), actor=actor(request)
            )
    except Invalid as refused:  # the editor again, the reply as typed, the reason beside it
        if wants_json(request):
            raise
        context = await _editor_page(request, reply_typed=typed, reply_refused=refused)
        return render(request, "agency/script.html", context, status=422)
    return see_other(request, f"/agency/businesses/{business.id}/script#replies")


@signed_in(Role.ADMIN)
async def remove_reply(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await canned_replies.remove_canned_reply(
            session, business, request.path_params["reply_id"], actor=actor(request)
        )
    return see_other(request, f"/agency/businesses/{business.id}/script#replies")
