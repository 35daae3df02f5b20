"""An admin sets a business's first-response promises, and how fast hand-offs are acknowledged."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Invalid
from console.business import reminder_policy
from console.people.tenancy import get_business
from console.sla import sla
from console.tasks import reminders, task_sla
from models import Role
from routes.access import actor, signed_in, user_of
from routes.forms import see_other, text
from routes.templating import render


@signed_in(Role.ADMIN)
async def policies(request: Request) -> Response:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        found = (await sla.policies_of(session, [business.id]))[business.id]
        task_policy = await task_sla.task_policy_of(session, business)
    context = {
        "business": business,
        "policies": found,
        "defaults": sla.DEFAULT_TARGETS,
        "task_policy": task_policy,
        "reminders": reminder_policy.read_policy(task_policy),
        "limits": (task_sla.MAX_ACKNOWLEDGE_MINUTES, task_sla.MAX_REMIND_BEFORE_DUE_MINUTES),
    }
    return render(request, "agency/sla.html", context)


@signed_in(Role.ADMIN)
async def save_policy(request: Request) -> Response:
    form = await request.form()
    try:
        minutes = int(text(form, "minutes"))
        warnings = [int(p) for p in text(form, "warn_at_percent", "50,80").split(",") if p.strip()]
    except ValueError:
        raise Invalid("Enter whole numbers.", field="minutes") from None
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await sla.set_policy(
            session,
            actor(request),
            business,
            channel=text(form, "channel"),
            priority=text(form, "priority"),
            minutes=minutes,
            warnings=warnings,
            notify_owner=bool(text(form, "notify_owner")),
        )
    return see_other(request, f"/agency/businesses/{business.id}/sla")


@signed_in(Role.ADMIN)
async def save_task_policy(request: Request) -> Response:
    form = await request.form()
    try:
        acknowledge = int(text(form, "acknowledge_minutes"))
        remind = int(text(form, "remind_before_due_minutes"))
    except ValueError:
        raise Invalid("Enter whole numbers.", field="acknowledge_minutes") from None
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await task_sla.set_task_policy(
            session,
            actor(request),
            business,
            acknowledge_minutes=acknowledge,
            remind_before_due_minutes=remind,
        )
    return see_other(request, f"/agency/businesses/{business.id}/sla#task-policy")


@signed_in(Role.ADMIN)
async def save_reminders(request: Request) -> Response:
    """Which follow-up reminders the business wants, and their days."""
    form = await request.form()
    fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    wanted = reminder_policy.policy_from_form(fields)
    async with request.app.state.db.transaction() as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        await reminders.set_reminders(session, actor(request), business, wanted)
    return see_other(request, f"/agency/businesses/{business.id}/sla#reminders")
