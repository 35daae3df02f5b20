"""Comments on a lead (the owner's, and the secretaries' answers), and the agency's page of the
owners' ratings per secretary."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.leads import feedback
from models import Role
from routes.access import safe_next, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
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
        if wants_json(request) or not is_htmx(request):
            raise
        lead = {"id": request.path_params["lead_id"]}  # the form needs only the address
        context = {"lead": lead, "refused": refused, "typed": typed}
        return render(request, "partials/comment_form.html", context, status=422)
    back = safe_next(typed["next"], f"/leads/{comment.lead_id}")
    return see_other(request, f"{back}#comments")


@signed_in(Role.ADMIN)
async def ratings(request: Request) -> Response:
    """Average stars, count and low ratings per secretary, and the latest comments."""
    async with request.app.state.db.transaction(write=False) as session:
        report = await feedback.ratings_report(
            session, user_of(request), request.query_params.get("business", "")
        )
    return render(request, "agency/ratings.html", {"report": report})
