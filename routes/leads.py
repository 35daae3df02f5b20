"""The secretary's workspace: the inbox, a new call, the lead page, claiming and the pipeline."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import leads
from console.leads.leads import InboxFilters
from console.leads.surveys import SurveyLinks
from console.people.tenancy import visible_businesses
from console.screens.lead_page import lead_view
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import now, see_other, text
from routes.templating import render

WORKERS = (Role.SECRETARY, Role.ADMIN)


@signed_in(*WORKERS)
async def inbox(request: Request) -> Response:
    """One queue of open leads across every business she serves; htmx gets only the queue."""
    params = request.query_params
    filters = InboxFilters(
        **{k: params.get(k, "") for k in ("business", "channel", "stage", "holder")}
    )
    async with request.app.state.db.transaction(write=False) as session:
        queue = await leads.inbox(session, user_of(request), filters)
    context = {"queue": queue, "filters": filters, "now": now(request)}
    return render(request, "inbox/index.html", context, block="queue")


@signed_in(*WORKERS)
async def new_lead_form(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        businesses = await visible_businesses(session, user_of(request))
    chosen = request.query_params.get("business", "")
    return render(request, "leads/new.html", {"businesses": businesses, "chosen": chosen})


@signed_in(*WORKERS)
async def create_lead(request: Request) -> Response:
    """Start a lead from a call she is taking: find or create the caller, take the lead."""
    form = await request.form()
    fields = ("business_id", "phone", "email", "name", "channel", "subject", "message", "priority")
    new = NewLead(**{name: text(form, name) for name in fields if text(form, name)})
    async with request.app.state.db.transaction() as session:
        lead = await arrivals.create_lead(session, user_of(request), new, now=now(request))
        await leads.claim_lead(session, user_of(request), lead.id, now=now(request))
    return see_other(request, f"/leads/{lead.id}")


@signed_in(*WORKERS, Role.OWNER)
async def show_lead(request: Request) -> Response:
    """The lead page: script, call log, contact card and history, tasks (the view is audited)."""
    async with request.app.state.db.transaction() as session:
        view = await lead_view(
            session,
            actor(request),
            request.path_params["lead_id"],
            reply_template=request.app.state.settings.whatsapp_reply_template,
        )
    return render(request, "leads/show.html", {"view": view, "now": now(request)})


@signed_in(*WORKERS)
async def claim(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        lead = await leads.claim_lead(
            session, user_of(request), request.path_params["lead_id"], now=now(request)
        )
    return see_other(request, f"/leads/{lead.id}")


@signed_in(*WORKERS)
async def release(request: Request) -> Response:
    async with request.app.state.db.transaction() as session:
        await leads.release_lead(
            session, user_of(request), request.path_params["lead_id"], now=now(request)
        )
    return see_other(request, "/inbox")


@signed_in(Role.ADMIN)
async def reassign(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        lead = await leads.reassign_lead(
            session,
            user_of(request),
            request.path_params["lead_id"],
            text(form, "secretary"),
            now=now(request),
        )
    return see_other(request, f"/leads/{lead.id}")


@signed_in(*WORKERS)
async def move_stage(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        lead = await leads.move_stage(
            session,
            user_of(request),
            request.path_params["lead_id"],
            stage=text(form, "stage"),
            deal_value=text(form, "deal_value"),
            lost_reason=text(form, "lost_reason"),
            now=now(request),
            survey_links=SurveyLinks.of(request.app.state.settings),
        )
    return see_other(request, f"/leads/{lead.id}")
