"""The agency's outbound webhooks (admins only): endpoints, their deliveries, replay and resume."""

from __future__ import annotations

import uuid

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.channels import webhooks
from models import Role
from routes.access import actor, signed_in
from routes.forms import see_other, text, wants_json
from routes.templating import render

PAGE = "agency/webhooks.html"


async def _context(request: Request, **more: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        endpoints = await webhooks.endpoints(session)
        businesses = await webhooks.business_choices(session)
    return {"endpoints": endpoints, "businesses": businesses, "events": webhooks.EVENTS, **more}


@signed_in(Role.ADMIN)
async def page(request: Request) -> Response:
    return render(request, PAGE, await _context(request))


def _business(form: FormData) -> uuid.UUID | None:
    chosen = text(form, "business_id")
    if not chosen:
        return None
    try:
        return uuid.UUID(chosen)
    except ValueError:
        raise Invalid("No such business.", field="business_id") from None


@signed_in(Role.ADMIN)
async def create(request: Request) -> Response:
    """A new endpoint; the answer shows its signing secret this once. Refused: the form again,
    as typed, with the reason beside the field."""
    form = await request.form()
    typed = {"url": text(form, "url"), "business_id": text(form, "business_id")}
    chosen = [value for value in form.getlist("events") if isinstance(value, str)]
    try:
        async with request.app.state.db.transaction() as session:
            made = await webhooks.create_endpoint(
                session,
                actor(request),
                url=typed["url"],
                events=chosen,
                business_id=_business(form),
                allow_private=request.app.state.settings.webhook_allow_private,
            )
    except Invalid as refused:
        if wants_json(request):
            raise
        context = await _context(request, refused=refused, typed=typed, chosen=chosen)
        return render(request, PAGE, context, status=refused.status, block="new_webhook")
    context = await _context(request, created=made)
    return render(request, PAGE, context, status=201, block="new_webhook")


@signed_in(Role.ADMIN)
async def resume(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await webhooks.resume_endpoint(session, actor(request), request.path_params["endpoint_id"])
    return see_other(request, "/agency/webhooks")


@signed_in(Role.ADMIN)
async def delete(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await webhooks.delete_endpoint(session, actor(request), request.path_params["endpoint_id"])
    return see_other(request, "/agency/webhooks")


@signed_in(Role.ADMIN)
async def replay(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await webhooks.replay_delivery(session, actor(request), request.path_params["delivery_id"])
    return see_other(request, "/agency/webhooks")
