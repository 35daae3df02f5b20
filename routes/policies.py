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
from routes.forms import see_other, text, wants_json
from routes.templating import render


async def _page(request: Request, **extra: object) -> dict[str, object]:
    async with request.app.state.db.transaction(write=False) as session:
        business = await get_business(session, user_of(request), request.path_params["business_id"])
        found = (await sla.policies_of(session, [business.id]))[business.id]
        task_policy = await task_sla.task_policy_of(session, business)
    return {
        "business": business,
        "policies": found,
        "defaults": sla.DEFAULT_TARGETS,
        "task_policy": task_policy,
        "reminders": reminder_policy.read_policy(task_policy),
        "limits": (task_sla.MAX_ACKNOWLEDGE_MINUTES, task_sla.MAX_REMIND_BEFORE_DUE_MINUTES),
        **extra,
    }


async def _refused(request: Request, refused: Invalid, form: str, typed: object) -> Response:
    """The page's form again, as typed, with the reason beside its field (htmx: that form)."""
    if wants_json(request):
        raise refused
    context = await _page(request, refused=refused, refused_form=form, typed=typed)
    return render(request, "agency/sla.html", context, status=422, block=f"{form}_form")


@signed_in(Role.ADMIN)
async def policies(request: Request) -> Response:
    return render(request, "agency/sla.html", await _page(request))


def _whole(raw: str, field: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise Invalid("Enter whole numbers.", field=field) from None


@signed_in(Role.ADMIN)
async def save_policy(request: Request) -> Response:
    form = await request.form()
    names = ("channel", "priority", "minutes", "warn_at_percent", "notify_owner")
    typed = {name: text(form, name) for name in names}
    try:
        minutes = _whole(typed["minutes"], "first_response_minutes")
        warnings = [
            _whole(p, "warn_at_percent") for p in typed["warn_at_percent"].split(",") if p.strip()
        ]
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            await sla.set_policy(
                session,
                actor(request),
                business,
                channel=typed["channel"],
                priority=typed["priority"],
                minutes=minutes,
                warnings=warnings,
                notify_owner=bool(typed["notify_owner"]),
            )
    except Invalid as refused:
        return await _refused(request, refused, "policy", typed)
    return see_other(request, f"/agency/businesses/{business.id}/sla")


@signed_in(Role.ADMIN)
async def save_task_policy(request: Request) -> Response:
    form = await request.form()
    names = ("acknowledge_minutes", "remind_before_due_minutes")
    typed = {name: text(form, name) for name in names}
    try:
        acknowledge = _whole(typed["acknowledge_minutes"], "acknowledge_minutes")
        remind = _whole(typed["remind_before_due_minutes"], "remind_before_due_minutes")
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            await task_sla.set_task_policy(
                session,
                actor(request),
                business,
                acknowledge_minutes=acknowledge,
                remind_before_due_minutes=remind,
            )
    except Invalid as refused:
        return await _refused(request, refused, "task_policy", typed)
    return see_other(request, f"/agency/businesses/{business.id}/sla#task-policy")


@signed_in(Role.ADMIN)
async def save_reminders(request: Request) -> Response:
    """Which follow-up reminders the business wants, and their days."""
    form = await request.form()
    fields = {name: value for name, value in form.multi_items() if isinstance(value, str)}
    try:
        wanted = reminder_policy.policy_from_form(fields)
        async with request.app.state.db.transaction() as session:
            business = await get_business(
                session, user_of(request), request.path_params["business_id"]
            )
            await reminders.set_reminders(session, actor(request), business, wanted)
    except Invalid as refused:
        return await _refused(request, refused, "reminders", fields)
    return see_other(request, f"/agency/businesses/{business.id}/sla#reminders")
