"""A business's covered hours: the week, its zone, 24/7, and dated exceptions. The agency's
admin edits any business's under /agency, an owner his own under /portal, with the same page
and the same checks (tenancy keeps each to the businesses he may see)."""

from __future__ import annotations

from itertools import zip_longest

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from console.agency import business_hours, change_requests
from console.agency.business_hours import Moved, Pair, TypedException, TypedHours
from console.base.errors import Conflict, Invalid
from console.business.hours import DAY_KEYS
from console.people.tenancy import get_business
from models import ChangeRequest, Role
from routes.access import actor, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.templating import render

# Where an extra empty window row can be asked for: a weekday, or the special-hours form.
WINDOW_ROWS = (*DAY_KEYS, "special")


async def _editor(request: Request) -> Response:
    """The page; `?window=mon` adds an empty window row to Monday (htmx gets only that row)."""
    window = request.query_params.get("window")
    window = window if window in WINDOW_ROWS else None
    if window and is_htmx(request):
        response = render(request, "partials/hours_window.html", {"prefix": window})
    else:
        context = await _page(request, window=window, moved=_moved(request))
        response = render(request, "agency/hours.html", context)
    response.headers["Vary"] = "HX-Request"
    return response


async def _page(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(
            session, user_of(request), request.path_params["business_id"], "hours"
        )
        asked = await change_requests.requests(session, business_id=business.id, limit=10)
    return {
        "requests": asked,
        "requested": request.query_params.get("requested") == "1",
        "page": business_hours.hours_page(business, now=now(request)),
        "zones": business_hours.zone_names(),
        "base": _base(request, business.id),
        **extra,
    }


async def _refused(request: Request, refused: Invalid, form: str, typed: object) -> Response:
    """The form again as typed, the reason beside its field (htmx: that form alone)."""
    if wants_json(request):
        raise refused
    context = await _page(request, refused=refused, refused_form=form, typed=typed)
    block = "week_form" if form == "week" else "exception_form"
    return render(request, "agency/hours.html", context, status=422, block=block)


async def _save(request: Request) -> Response:
    form = await request.form()
    typed = TypedHours(
        timezone=text(form, "timezone"),
        always_open=bool(text(form, "always_open")),
        week={day: _pairs(form, day) for day in DAY_KEYS},
    )
    try:
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"], "hours"
            )
            if _owner(request):
                moved = await change_requests.owner_saves_hours(
                    session, actor(request), business, typed
                )
            else:
                moved = await business_hours.save_hours(
                    session, actor(request), business, typed, contract=True
                )
    except Invalid as refused:
        return await _refused(request, refused, "week", typed)
    return _back(request, business.id, moved)


async def _add_exception(request: Request) -> Response:
    form = await request.form()
    typed = TypedException(
        day=text(form, "date"),
        closed=text(form, "kind", "closed") == "closed",
        windows=_pairs(form, "special"),
    )
    try:
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"], "hours"
            )
            if _owner(request):
                moved = await change_requests.owner_adds_exception(
                    session, actor(request), business, typed
                )
            else:
                moved = await business_hours.add_exception(session, actor(request), business, typed)
    except Invalid as refused:
        return await _refused(request, refused, "add-exception", typed)
    return _back(request, business.id, moved)


async def _remove_exception(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        business = await get_business(
            session, user_of(request), request.path_params["business_id"], "hours"
        )
        moved = await business_hours.remove_exception(
            session, actor(request), business, text(form, "date")
        )
    return _back(request, business.id, moved)


def _pairs(form: FormData, prefix: str) -> list[Pair]:
    """`mon_start` / `mon_end` fields, repeated once per window row, as (start, end) pairs."""
    starts, ends = (
        [v for v in form.getlist(f"{prefix}_{edge}") if isinstance(v, str)]
        for edge in ("start", "end")
    )
    return list(zip_longest(starts, ends, fillvalue=""))


def _owner(request: Request) -> bool:
    return user_of(request).role == Role.OWNER


def _base(request: Request, business_id: object) -> str:
    """The page's own address: the agency's, or the owner's portal."""
    home = "portal" if _owner(request) else "agency"
    return f"/{home}/businesses/{business_id}/hours"


def _back(request: Request, business_id: object, moved: Moved | ChangeRequest) -> Response:
    """The page again, saying what the save moved, or that the agency was asked."""
    if isinstance(moved, ChangeRequest):
        return see_other(request, f"{_base(request, business_id)}?requested=1#requests")
    query = f"saved=1&leads={moved.leads}&tasks={moved.tasks}"
    return see_other(request, f"{_base(request, business_id)}?{query}")


def _moved(request: Request) -> Moved | None:
    """What the last save moved, as the redirect after it says (shown, never trusted)."""
    if request.query_params.get("saved") != "1":
        return None
    counts = [request.query_params.get(name, "0") for name in ("leads", "tasks")]
    leads, tasks = (int(count) if count.isdigit() else 0 for count in counts)
    return Moved(leads, tasks)


# The agency's admin reaches every business's hours; an owner his own, from his portal.
editor = signed_in(Role.ADMIN)(_editor)
save = signed_in(Role.ADMIN)(_save)
add_exception = signed_in(Role.ADMIN)(_add_exception)
remove_exception = signed_in(Role.ADMIN)(_remove_exception)
owner_editor = signed_in(Role.OWNER)(_editor)
owner_save = signed_in(Role.OWNER)(_save)
owner_add_exception = signed_in(Role.OWNER)(_add_exception)
owner_remove_exception = signed_in(Role.OWNER)(_remove_exception)


# --- the owners' requests that wait for the agency ------------------------------------------


@signed_in(Role.ADMIN)
async def requests_page(request: Request) -> Response:
    """Pending requests first, then the latest answered."""
    async with request.app.state.db.transaction(write=False) as session:
        asked = await change_requests.requests(session)
    return render(request, "agency/requests.html", {"requests": asked})


@signed_in(Role.ADMIN)
async def decide(request: Request) -> Response:
    """Approve (the change is made) or decline, with an optional note the owner reads."""
    form = await request.form()
    typed = {"decision": text(form, "decision"), "note": text(form, "note")}
    if typed["decision"] not in {"approve", "decline"}:
        raise Invalid("Approve or decline.", field="decision")
    try:
        async with request.app.state.db.transaction() as session:
            await change_requests.decide(
                session,
                actor(request),
                request.path_params["request_id"],
                approve=typed["decision"] == "approve",
                note=typed["note"],
            )
    except (Invalid, Conflict) as refused:
        if wants_json(request):
            raise
        async with request.app.state.db.transaction(write=False) as session:
            asked = await change_requests.requests(session)
        context = {
            "requests": asked,
            "refused": refused,
            "refused_request": request.path_params["request_id"],
            "typed": typed,
        }
        return render(request, "agency/requests.html", context, status=refused.status)
    return see_other(request, "/agency/requests")
