"""An admin connects a business to the outside: its lines, its intake key and its web form."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.channels import lines
from console.people.tenancy import get_business
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import see_other, text, wants_json
from routes.templating import env, render


async def _page(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        found = await lines.lines_of(session, business.id)
    settings = request.app.state.settings
    base = settings.public_url or str(request.base_url).rstrip("/")
    snippet = env.get_template("agency/embed_snippet.html").render(business=business, base=base)
    return {
        "snippet": snippet,  # shown as text to copy, escaped like any other text
        "business": business,
        "lines": found,
        "base": base,
        "signed": {
            "twilio": bool(settings.twilio_auth_token),
            "whatsapp": bool(settings.whatsapp_app_secret),
            "email": bool(settings.email_webhook_signing_key),
        },
        **extra,
    }


@signed_in(Role.ADMIN)
async def channels(request: Request) -> Response:
    return render(request, "agency/channels.html", await _page(request))


@signed_in(Role.ADMIN)
async def add_line(request: Request) -> Response:
    """Refused (a bad address, a line of another business), the form comes back as typed."""
    form = await request.form()
    typed = {name: text(form, name) for name in ("channel", "address", "label")}
    try:
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            await lines.add_line(
                session,
                business,
                typed["channel"],
                typed["address"],
                typed["label"],
                actor=actor(request),
            )
    except Invalid as refused:
        if wants_json(request):
            raise
        context = await _page(request, refused=refused, typed=typed)
        return render(request, "agency/channels.html", context, status=422, block="line_form")
    return see_other(request, f"/agency/businesses/{business.id}/channels")


@signed_in(Role.ADMIN)
async def remove_line(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await lines.remove_line(
            session, business, request.path_params["line_id"], actor=actor(request)
        )
    return see_other(request, f"/agency/businesses/{business.id}/channels")


@signed_in(Role.ADMIN)
async def rotate_key(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await lines.rotate_key(session, actor(request), business)
    return see_other(request, f"/agency/businesses/{business.id}/channels")
