"""The business's calendar: the secretary books and cancels from the lead page; the owner books,
moves and cancels from his portal, where he also finds the link his calendar subscribes to; the
contact cancels from the signed link in his confirmation; calendars read the signed feed (no
session: the token in the path is the proof; the owner's "new link" bumps the business's feed
version, which revokes it)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, Invalid
from console.base.i18n import using_locale
from console.calendar import appointments, calendar_feed
from console.calendar.appointments import AppointmentLinks, Booking
from console.people.tenancy import permissions_of, visible_businesses
from models import Contact, Role
from routes.access import signed_in, user_of
from routes.forms import now, see_other, text, wants_json
from routes.leads import refused_on_lead
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)
SLOT = ("day", "start", "minutes")
BOOKING = (*SLOT, "title", "location", "notes", "request_key")
WHO = ("business_id", "phone", "email", "name")
# The token must not leak to other sites through Referer, nor stay in a shared cache.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _template(request: Request) -> str | None:
    return request.app.state.settings.contact_whatsapp_template  # type: ignore[no-any-return]


def _links(request: Request) -> AppointmentLinks:
    return AppointmentLinks.of(request.app.state.settings)


@signed_in(*WORKERS)
async def book(request: Request) -> Response:
    """Book the lead's meeting; a slot outside the hours is 422, a taken one 409."""
    form = await request.form()
    typed = {name: text(form, name) for name in BOOKING}
    try:
        async with request.app.state.db.transaction() as session:
            appointment = await appointments.book_appointment(
                session,
                user_of(request),
                request.path_params["lead_id"],
                Booking(**typed),
                now=now(request),
                whatsapp_template=_template(request),
                links=_links(request),
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
            whatsapp_template=_template(request),
        )
    return see_other(request, f"/leads/{appointment.lead_id}#appointments")


async def _portal_page(request: Request, **extra: object) -> dict[str, object]:
    settings = request.app.state.settings
    base_url = settings.public_url or str(request.base_url)
    async with request.app.state.db.transaction(write=False) as session:
        coming = await appointments.upcoming(session, user_of(request), now=now(request))
        businesses = await visible_businesses(session, user_of(request))
        may_feed = await permissions_of(session, user_of(request))
    feeds = [
        (business, calendar_feed.feed_url(settings.secret_key, business, base_url))
        for business in businesses
        if "calendar" in may_feed.get(business.id, ())
    ]
    return {
        "coming": coming,
        "feeds": feeds,
        "businesses": businesses,
        "timezones": {b.id: b.timezone for b in businesses},
        "when": appointments.appointment_when,
        **extra,
    }


@signed_in(Role.OWNER)
async def portal(request: Request) -> Response:
    """What is coming (to move or cancel), a form to book, and the link his calendar
    subscribes to."""
    return render(request, "portal/appointments.html", await _portal_page(request))


async def _refused(
    request: Request, refused: Invalid | Conflict, form: str, typed: dict[str, str]
) -> Response:
    """The form again as typed, the reason beside its field (htmx: that form alone)."""
    if wants_json(request):
        raise refused
    context = await _portal_page(request, refused=refused, refused_form=form, typed=typed)
    status = 409 if isinstance(refused, Conflict) else 422
    block = "book_form" if form == "book" else "coming_list"
    return render(request, "portal/appointments.html", context, status=status, block=block)


@signed_in(Role.OWNER)
async def owner_book(request: Request) -> Response:
    """Book a meeting with a contact (by phone or e-mail) of one of his businesses."""
    form = await request.form()
    typed = {name: text(form, name) for name in (*WHO, *BOOKING)}
    try:
        async with request.app.state.db.transaction() as session:
            await appointments.book_for_contact(
                session,
                user_of(request),
                typed["business_id"],
                {name: typed[name] for name in WHO},
                Booking(**{name: typed[name] for name in BOOKING}),
                now=now(request),
                whatsapp_template=_template(request),
                links=_links(request),
            )
    except (Invalid, Conflict) as refused:
        return await _refused(request, refused, "book", typed)
    return see_other(request, "/portal/appointments?done=booked")


@signed_in(Role.OWNER)
async def owner_move(request: Request) -> Response:
    """Move a coming meeting; the contact is told the new time."""
    form = await request.form()
    typed = {name: text(form, name) for name in SLOT}
    appointment_id = request.path_params["appointment_id"]
    try:
        async with request.app.state.db.transaction() as session:
            await appointments.move_appointment(
                session,
                user_of(request),
                appointment_id,
                Booking(**typed),
                now=now(request),
                whatsapp_template=_template(request),
                links=_links(request),
            )
    except (Invalid, Conflict) as refused:
        return await _refused(request, refused, f"move-{appointment_id}", typed)
    return see_other(request, "/portal/appointments?done=moved")


@signed_in(Role.OWNER)
async def owner_cancel(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await appointments.cancel_appointment(
            session,
            user_of(request),
            request.path_params["appointment_id"],
            now=now(request),
            whatsapp_template=_template(request),
        )
    return see_other(request, "/portal/appointments?done=cancelled")


async def _meeting(request: Request, status: int = 200, **extra: object) -> Response:
    """The contact's page of his meeting, in his language (the business's when none)."""
    async with request.app.state.db.transaction(write=False) as session:
        appointment, business = await appointments.linked_appointment(
            session, request.app.state.settings.secret_key, request.path_params["token"]
        )
        contact = await session.get(Contact, appointment.contact_id)
    locale = (contact.locale if contact is not None else "") or business.locale
    with using_locale(locale):
        context = {
            "appointment": appointment,
            "business": business,
            "when": appointments.appointment_when(appointment.starts_at, business.timezone),
            "past": appointment.starts_at <= now(request),
            **extra,
        }
        response = render(request, "surveys/meeting.html", context, status=status)
    response.headers.update(PRIVATE)
    return response


async def meeting(request: Request) -> Response:
    return await _meeting(request)


async def cancel_meeting(request: Request) -> Response:
    """The contact cancels: once; after the meeting began, 409 on the same page."""
    try:
        async with request.app.state.db.transaction() as session:
            await appointments.cancel_by_link(
                session,
                request.app.state.settings.secret_key,
                request.path_params["token"],
                now=now(request),
                whatsapp_template=_template(request),
            )
    except Conflict as refused:
        return await _meeting(request, 409, refused=refused)
    response = see_other(request, request.url.path)
    response.headers.update(PRIVATE)
    return response


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
