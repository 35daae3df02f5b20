"""The on-call rota: the admin's page for a business's rota, and the link a paged person opens
to acknowledge (no session: the signed token in the path is the proof, and /ack/ posts need no
CSRF token, routes/middleware.py)."""

from __future__ import annotations

from babel.dates import get_day_names
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from console.agency import admin
from console.base.errors import Invalid
from console.base.i18n import current_locale, pick_locale, using_locale
from console.screens.on_call_page import on_call_page
from console.tasks import on_call, paging
from console.tasks.on_call import DatedShift, Link, RotaForm, Shift
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text
from routes.templating import render

# The token must not leak to other sites through Referer, nor stay in a shared cache.
PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
BLANK_ROWS = 2


async def page(request: Request) -> Response:
    """Whose page this is, and whether he has acknowledged it (GET changes nothing)."""
    async with request.app.state.db.transaction(write=False) as session:
        found = await paging.page_of_token(session, _secret(request), request.path_params["token"])
        business = await admin.get_business(session, str(found.business_id))
    locale = found.user.locale if found.user else business.locale
    with using_locale(pick_locale(None, locale)):
        response = render(request, "tasks/page_ack.html", {"page": found, "business": business})
    response.headers.update(PRIVATE)
    return response


async def confirm(request: Request) -> Response:
    """Acknowledge, then show the page again (a repeat changes nothing; 409 once passed on)."""
    async with request.app.state.db.transaction() as session:
        found = await paging.page_of_token(session, _secret(request), request.path_params["token"])
        await paging.acknowledge(session, found, via="link", now=now(request))
    response = see_other(request, request.url.path)
    response.headers.update(PRIVATE)
    return response


@signed_in(Role.OWNER)
async def owner_view(request: Request) -> Response:
    """The owner reads his business's rota and overflow rules (the agency sets them)."""
    async with request.app.state.db.transaction(write=False) as session:
        view = await on_call_page(
            session, user_of(request), request.path_params["business_id"], now=now(request)
        )
    return render(request, "portal/on_call.html", {"view": view, "days": dict(_days())})


@signed_in(Role.ADMIN)
async def rota(request: Request) -> Response:
    return render(request, "agency/on_call.html", await _rota_page(request))


@signed_in(Role.ADMIN)
async def save_rota(request: Request) -> Response:
    """The form comes back in place (htmx), as typed, with the reason beside the row refused."""
    typed = _typed(await request.form())
    try:
        async with request.app.state.db.transaction() as session:
            found = await admin.get_business(session, request.path_params["business_id"])
            typed = await on_call.save_rota(session, actor(request), found, typed)
    except Invalid as refused:
        context = await _rota_page(request, typed, rota_error=refused)
        return render(request, "agency/on_call.html", context, status=422, block="rota_form")
    if not is_htmx(request):
        return see_other(request, f"/agency/businesses/{found.id}/on-call")
    context = await _rota_page(request, typed, rota_saved=True)
    return render(request, "agency/on_call.html", context, block="rota_form")


async def _rota_page(
    request: Request, typed: RotaForm | None = None, **context: object
) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        found = await admin.get_business(session, request.path_params["business_id"])
        people = await on_call.people_for_hand_off(session, found.id)
        typed = typed or await on_call.rota_form(session, found.id)
    return {
        "business": found,
        "people": people,
        "rota": typed,
        "blank": BLANK_ROWS,
        "days": _days(),
        **context,
    }


def _typed(form: FormData) -> RotaForm:
    def rows(name: str) -> list[str]:
        return [str(value) for value in form.getlist(name)]

    chain = [Link(u, r) for u, r in zip(rows("chain_user"), rows("chain_reach"), strict=False)]
    weekly = [
        Shift(d, s, e, u)
        for d, s, e, u in zip(
            rows("weekly_day"),
            rows("weekly_start"),
            rows("weekly_end"),
            rows("weekly_user"),
            strict=False,
        )
    ]
    dates = [DatedShift(d, u) for d, u in zip(rows("dates_date"), rows("dates_user"), strict=False)]
    return RotaForm(
        text(form, "ack_minutes"), chain, weekly, dates, text(form, "holidays"), text(form, "eves")
    )


def _days() -> list[tuple[int, str]]:
    """The week as the form lists it, Sunday first: (date.weekday(), its name)."""
    names = get_day_names("wide", locale=current_locale())
    return [(day, str(names[day])) for day in (6, 0, 1, 2, 3, 4, 5)]


def _secret(request: Request) -> str:
    return str(request.app.state.settings.secret_key)
