"""Contacts: search in any phone format, the caller lookup of a new call, the customer card."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, Invalid
from console.contacts import contacts
from console.contacts.customer_classes import inactive_contacts, inactive_since
from console.screens.contact_page import caller_lookup, contact_view
from console.tasks import reminders
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now, see_other, text, wants_json
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)


@signed_in(*WORKERS, Role.OWNER)
async def search(request: Request) -> Response:
    query = request.query_params.get("q", "")
    inactive = request.query_params.get("inactive") == "1"
    async with request.app.state.db.transaction(write=False) as session:
        if inactive and not query.strip():
            found = await inactive_contacts(session, user_of(request), now=now(request))
        else:
            found = await contacts.search_contacts(session, user_of(request), query)
    before = inactive_since(now(request))
    if inactive:  # the filter: only those silent for two years
        found = [c for c in found if (c.last_contact_at or c.created_at) < before]
    context = {"contacts": found, "q": query, "inactive": inactive, "inactive_before": before}
    return render(request, "contacts/index.html", context, block="results")


@signed_in(*WORKERS, Role.OWNER)
async def silent(request: Request) -> Response:
    """We miss you: the customers who have been silent too long, to win back."""
    business_id = request.query_params.get("business_id", "")
    async with request.app.state.db.transaction(write=False) as session:
        found = await reminders.silent_contacts(
            session, user_of(request), now=now(request), business_id=business_id
        )
    context = {"silent": found, "now": now(request)}
    return render(request, "contacts/silent.html", context, block="results")


@signed_in(*WORKERS)
async def lookup(request: Request) -> Response:
    """While she types the caller's number: the known contact and their history, or 'new'."""
    params = request.query_params
    async with request.app.state.db.transaction(write=False) as session:
        found = await caller_lookup(
            session, user_of(request), params.get("business_id", ""), params.get("phone", "")
        )
    return render(request, "partials/caller.html", {"found": found})


@signed_in(*WORKERS, Role.OWNER)
async def show(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        view = await contact_view(
            session, user_of(request), request.path_params["contact_id"], now=now(request)
        )
    context = {"view": view, "inactive_before": inactive_since(now(request))}
    return render(request, "contacts/show.html", context)


@signed_in(*WORKERS)
async def update(request: Request) -> Response:
    form = await request.form()
    fields = {name: text(form, name) for name in contacts.CARD_FIELDS if name in form}
    try:
        async with request.app.state.db.transaction() as session:
            contact = await contacts.get_contact(
                session, user_of(request), request.path_params["contact_id"]
            )
            await contacts.update_contact(session, contact, fields, now=now(request))
    except (Invalid, Conflict) as refused:
        if wants_json(request):
            raise
        async with request.app.state.db.transaction(write=False) as session:
            view = await contact_view(
                session, user_of(request), request.path_params["contact_id"], now=now(request)
            )
        context = {"view": view, "refused": refused, "typed": fields}
        return render(
            request, "contacts/show.html", context, status=refused.status, block="card_form"
        )
    return see_other(request, f"/contacts/{contact.id}")
