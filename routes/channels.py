"""An admin connects a business to the outside: its lines, its intake key and its web form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.channels import lines
from console.people import accounts
from console.people.tenancy import get_business
from models import Role
from routes.access import signed_in, user_of
from routes.forms import see_other, text
from routes.templating import env, render


@signed_in(Role.ADMIN)
async def channels(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        found = await lines.lines_of(session, business.id)
    settings = request.app.state.settings
    base = settings.public_url or str(request.base_url).rstrip("/")
    snippet = env.get_template("agency/embed_snippet.html").render(business=business, base=base)
    context = {
        "snippet": snippet,  # shown as text to copy, escaped like any other text
        "business": business,
        "lines": found,
        "base": base,
        "signed": {
            "twilio": bool(settings.twilio_auth_token),
            "whatsapp": bool(settings.whatsapp_app_secret),
            "email": bool(settings.email_webhook_signing_key),
        },
    }
    return render(request, "agency/channels.html", context)


@signed_in(Role.ADMIN)
async def add_line(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await lines.add_line(
            session, business, text(form, "channel"), text(form, "address"), text(form, "label")
        )
    return see_other(request, f"/agency/businesses/{business.id}/channels")


@signed_in(Role.ADMIN)
async def remove_line(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await lines.remove_line(session, business, request.path_params["line_id"])
    return see_other(request, f"/agency/businesses/{business.id}/channels")


@signed_in(Role.ADMIN)
async def rotate_key(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await accounts.rotate_intake_key(session, business)
    return see_other(request, f"/agency/businesses/{business.id}/channels")
