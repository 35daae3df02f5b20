"""Billing: the agency sets each business's plan and exports a month of every business; the owner
(and the agency for him) sees this month's meter, the months before and a printable statement."""

from __future__ import annotations

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid, NotFound
from console.people.tenancy import get_business, visible_businesses
from console.reports import billing, billing_exports
from models import Business, Role
from routes.access import actor, signed_in, user_of
from routes.forms import now, see_other, text, wants_json
from routes.templating import render


def _money(context: dict[str, object]) -> dict[str, object]:
    return {**context, "shekels": billing.shekels}


async def _plan_page(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        plan = await billing.current_plan(session, business, now=now(request))
    month = billing.this_month(now(request))
    return _money({"business": business, "plan": plan, "month": month, **extra})


@signed_in(Role.ADMIN)
async def plan_editor(request: Request) -> Response:
    context = await _plan_page(request)
    context["typed"] = billing.plan_form(context["plan"])  # type: ignore[arg-type]
    return render(request, "agency/plan.html", context)


@signed_in(Role.ADMIN)
async def save_plan(request: Request) -> Response:
    """The plan from this month on; any field that is not a number in range is 422 in place."""
    form = await request.form()
    typed = {name: text(form, name) for name in billing.PLAN_FIELDS}
    try:
        terms = billing.parse_plan(typed)
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            await billing.set_plan(session, actor(request), business, terms)
    except Invalid as refused:
        if wants_json(request):
            raise
        context = await _plan_page(request, refused=refused, typed=typed)
        return render(request, "agency/plan.html", context, status=422, block="plan_form")
    return see_other(request, f"/agency/businesses/{business.id}/plan?saved=1")


async def _chosen(request: Request, session: AsyncSession) -> tuple[Business, list[Business]]:
    """The business named by `?business=` (404 outside the user's), else his first."""
    user = user_of(request)
    mine = await visible_businesses(session, user)
    wanted = request.query_params.get("business", "").strip()
    if wanted:
        return await get_business(session, user, wanted), mine
    if not mine:
        raise NotFound("No business is linked to you yet.")
    return mine[0], mine


@signed_in(Role.OWNER, Role.ADMIN)
async def portal(request: Request) -> Response:
    """This month's meter and the twelve months before, with a statement for each."""
    async with request.app.state.db.transaction(write=False) as session:
        business, mine = await _chosen(request, session)
        screen = await billing.billing_screen(session, business, now=now(request))
    return render(request, "portal/billing.html", _money({"screen": screen, "businesses": mine}))


@signed_in(Role.OWNER, Role.ADMIN)
async def statement(request: Request) -> Response:
    """One month's statement of one business, made to be printed; a month that is no month is
    said in place (422)."""
    raw = request.query_params.get("month", "")
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        error = None
        try:
            month = billing.parse_month(raw, now(request))
        except Invalid as refused:
            error, month = refused, billing.this_month(now(request))
        found = await billing.statements(session, [business], month, month, now=now(request))
    context = {"business": business, "statement": found[0], "error": error, "raw_month": raw}
    context["current"] = month == billing.this_month(now(request))
    return render(request, "portal/statement.html", _money(context), status=422 if error else 200)


async def _month_of_all(request: Request) -> tuple[date, list[billing.Statement]]:
    month = billing.parse_month(request.query_params.get("month"), now(request))
    async with request.app.state.db.transaction(write=False) as session:
        businesses = await visible_businesses(session, user_of(request))
        return month, await billing.statements(session, businesses, month, month, now=now(request))


@signed_in(Role.ADMIN)
async def agency_month(request: Request) -> Response:
    """Every business's bill for a month, with the files; a month that is no month is 422."""
    raw = request.query_params.get("month", "")
    try:
        month, found = await _month_of_all(request)
        error = None
    except Invalid as refused:
        month, found, error = billing.this_month(now(request)), [], refused
    context = {"month": month, "statements": found, "error": error, "raw_month": raw}
    context["labels"] = billing_exports.labels()
    return render(request, "agency/billing.html", _money(context), status=422 if error else 200)


def _download(content: bytes, media_type: str, name: str) -> Response:
    disposition = f'attachment; filename="{name}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@signed_in(Role.ADMIN)
async def agency_csv(request: Request) -> Response:
    month, found = await _month_of_all(request)
    name = billing_exports.filename(month, "csv")
    return _download(billing_exports.to_csv(found), billing_exports.CSV_TYPE, name)


@signed_in(Role.ADMIN)
async def agency_xlsx(request: Request) -> Response:
    month, found = await _month_of_all(request)
    name = billing_exports.filename(month, "xlsx")
    return _download(billing_exports.to_xlsx(found), billing_exports.XLSX_TYPE, name)
