"""Comments on a lead (the owner's, and the secretaries' answers), and the agency's page of the
owners' ratings per secretary."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.leads import feedback
from console.screens import portal
from models import Role
from routes.access import actor, safe_next, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.leads import refused_on_lead
from routes.templating import render


@signed_in()
async def comment_on_lead(request: Request) -> Response:
    form = await request.form()
    typed = {name: text(form, name) for name in ("body", "request_key", "next")}
    try:
        async with request.app.state.db.transaction() as session:
            comment = await feedback.comment_on_lead(
                session,
                user_of(request),
                request.path_params["lead_id"],
                typed["body"],
                now=now(request),
                request_key=typed["request_key"],
            )
    except Invalid as refused:
        if wants_json(request):
            raise
        if not is_htmx(request):  # the page it was sent from again, as typed
            return await _refused_page(request, refused, typed)
        lead = {"id": request.path_params["lead_id"]}  # the form needs only the address
        context = {"lead": lead, "refused": refused, "refused_form": "comment", "typed": typed}
        return render(request, "partials/comment_form.html", context, status=422)
    back = safe_next(typed["next"], f"/leads/{comment.lead_id}")
    return see_other(request, f"{back}#comments")


async def _refused_page(request: Request, refused: Invalid, typed: dict[str, str]) -> Response:
    if user_of(request).role != Role.OWNER:
        return await refused_on_lead(request, refused, "comment", typed)
    async with request.app.state.db.transaction(write=False) as session:
        view = await portal.owner_lead(
            session, actor(request), request.path_params["lead_id"], opened=False
        )
    context = {"view": view, "now": now(request), "refused": refused, "typed": typed}
    context["refused_form"] = "comment"
    return render(request, "portal/lead.html", context, status=refused.status)


@signed_in(Role.ADMIN)
async def ratings(request: Request) -> Response:
    """Average stars, count and low ratings per secretary, and the latest comments."""
    async with request.app.state.db.transaction(write=False) as session:
        report = await feedback.ratings_report(
            session, user_of(request), request.query_params.get("business", "")
        )
    return render(request, "agency/ratings.html", {"report": report})
