"""An admin sets a business's first-response promises."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console import sla
from console.errors import Invalid
from console.tenancy import get_business
from models import Role
from routes.access import signed_in, user_of
from routes.forms import see_other, text
from routes.templating import render


@signed_in(Role.ADMIN)
async def policies(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        found = (await sla.policies_of(session, [business.id]))[business.id]
    context = {"business": business, "policies": found, "defaults": sla.DEFAULT_TARGETS}
    return render(request, "agency/sla.html", context)


@signed_in(Role.ADMIN)
async def save_policy(request: Request) -> Response:
    form = await request.form()
    try:
        minutes = int(text(form, "minutes"))
        warnings = [int(p) for p in text(form, "warn_at_percent", "50,80").split(",") if p.strip()]
    except ValueError:
        raise Invalid("Enter whole numbers.", field="minutes") from None
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await sla.set_policy(
            session,
            business,
            channel=text(form, "channel"),
            priority=text(form, "priority"),
            minutes=minutes,
            warnings=warnings,
            notify_owner=bool(text(form, "notify_owner")),
        )
    return see_other(request, f"/agency/businesses/{business.id}/sla")
