"""The business's calendar: the secretary books and cancels from the lead page, the owner sees
what is coming in his portal, and calendars read the signed feed (no session: the token in the
path is the proof; the owner's "new link" bumps the business's feed version, which revokes it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, Invalid
from console.calendar import appointments, calendar_feed
from console.calendar.appointments import Booking
from console.people.tenancy import visible_businesses
from models import Role
from routes.access import signed_in, user_of
from routes.forms import now, see_other, text
from routes.leads import refused_on_lead
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)


@signed_in(*WORKERS)
async def book(request: Request) -> Response:
    """Book the lead's meeting; a slot outside the hours is 422, a taken one 409."""
    form = await request.form()
    fields = ("day", "start", "minutes", "title", "location", "notes", "request_key")
    typed = {name: text(form, name) for name in fields}
    try:
        async with request.app.state.db.transaction() as session:
            appointment = await appointments.book_appointment(
                session,
                user_of(request),
                request.path_params["lead_id"],
                Booking(**typed),
                now=now(request),
                whatsapp_template=request.app.state.settings.contact_whatsapp_template,
            )
    except (Invalid, Conflict) as refused:
        return await refused_on_lead(request, refused, "appointment", typed)
    return see_other(request, f"/leads/{appointment.lead_id}#appointments")


@signed_in(*WORKERS)
async def cancel(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        appointment = await appointments.cancel_appointment(
            session,
            user_of(request),
            request.path_params["appointment_id"],
            now=now(request),
            whatsapp_template=request.app.state.settings.contact_whatsapp_template,
        )
    return see_other(request, f"/leads/{appointment.lead_id}#appointments")


@signed_in(Role.OWNER)
async def portal(request: Request) -> Response:
    """What is coming, and the link with which his calendar subscribes to it."""
    settings = request.app.state.settings
    base_url = settings.public_url or str(request.base_url)
    async with request.app.state.db.transaction(write=False) as session:
        coming = await appointments.upcoming(session, user_of(request), now=now(request))
        businesses = await visible_businesses(session, user_of(request))
    feeds = [
        (business, calendar_feed.feed_url(settings.secret_key, business, base_url))
        for business in businesses
    ]
    context = {
        "coming": coming,
        "feeds": feeds,
        "timezones": {b.id: b.timezone for b in businesses},
    }
    return render(request, "portal/appointments.html", context)


@signed_in(Role.OWNER)
async def revoke_feed(request: Request) -> Response:
    """A new feed link: the old one answers 404 from now on."""
    async with request.app.state.db.transaction() as session:
        await calendar_feed.revoke_feed(
            session,
            user_of(request),
            request.path_params["business_id"],
            now=now(request),
            address=request.state.client_address,
        )
    return see_other(request, "/portal/appointments#calendar-feeds")


async def feed(request: Request) -> Response:
    """The business's calendar as iCalendar, for Google, Apple and Outlook to subscribe to."""
    async with request.app.state.db.transaction(write=False) as session:
        business = await calendar_feed.feed_business(
            session, request.app.state.settings.secret_key, request.path_params["token"]
        )
        booked = await calendar_feed.feed_appointments(session, business, now=now(request))
    body = calendar_feed.calendar_ics(business, booked, now=now(request))
    headers = {"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"}
    return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)
