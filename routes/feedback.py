"""Comments on a lead (the owner's, and the secretaries' answers), and the agency's page of the
owners' ratings per secretary."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.leads import feedback
from models import Role
from routes.access import safe_next, signed_in, user_of
from routes.forms import now, see_other, text
from routes.templating import render


@signed_in()
async def comment_on_lead(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        comment = await feedback.comment_on_lead(
            session,
            user_of(request),
            request.path_params["lead_id"],
            text(form, "body"),
            now=now(request),
            request_key=text(form, "request_key"),
        )
    back = safe_next(text(form, "next"), f"/leads/{comment.lead_id}")
    return see_other(request, f"{back}#comments")


@signed_in(Role.ADMIN)
async def ratings(request: Request) -> Response:
    """Average stars, count and low ratings per secretary, and the latest comments."""
    async with request.app.state.db.transaction(write=False) as session:
        report = await feedback.ratings_report(
            session, user_of(request), request.query_params.get("business", "")
        )
    return render(request, "agency/ratings.html", {"report": report})
