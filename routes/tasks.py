"""Task lists: what was handed to me (and, for a secretary, what I handed off)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.base.errors import Conflict, Invalid
from console.people.tenancy import get_scoped
from console.screens import live
from console.tasks import reminders, task_sla, tasks
from models import Task
from routes.access import safe_next, signed_in, user_of
from routes.forms import is_htmx, now, see_other, text, wants_json
from routes.templating import render

STATUSES = ("open", "done", "cancelled")


@signed_in()
async def task_list(request: Request) -> Response:
    """My tasks by status; beside the open ones, the customers whose follow-up is due."""
    status = request.query_params.get("status", "open")
    status = status if status in STATUSES else "open"
    async with request.app.state.db.transaction(write=False) as session:
        found = await tasks.my_tasks(session, user_of(request), status=status)
        followups = (
            await reminders.due_followups(session, user_of(request), now=now(request))
            if status == "open"
            else []
        )
    context = {"tasks": found, "status": status, "now": now(request), "followups": followups}
    return render(request, "tasks/index.html", context, block="list")


@signed_in()
async def acknowledge(request: Request) -> Response:
    """The assignee says he has seen the task."""
    try:
        async with request.app.state.db.transaction() as session:
            await task_sla.acknowledge_task(
                session, user_of(request), request.path_params["task_id"], now=now(request)
            )
    except Conflict as refused:
        return await _refused(request, refused)
    return see_other(request, "/tasks")


@signed_in()
async def set_status(request: Request) -> Response:
    form = await request.form()
    try:
        async with request.app.state.db.transaction() as session:
            await tasks.set_task_status(
                session,
                user_of(request),
                request.path_params["task_id"],
                text(form, "status"),
                now=now(request),
            )
    except (Invalid, Conflict) as refused:
        return await _refused(request, refused)
    return see_other(request, safe_next(text(form, "next"), "/tasks"))


async def _refused(request: Request, refused: Invalid | Conflict) -> Response:
    """The task's row again as it stands now, the reason in it (htmx: the row alone; else the
    open tasks with that row first)."""
    if wants_json(request):
        raise refused
    async with request.app.state.db.transaction(write=False) as session:
        task = await get_scoped(session, user_of(request), Task, request.path_params["task_id"])
        row = await live.task_for_row(session, str(task.business_id), str(task.id))
        found = [] if is_htmx(request) else await tasks.my_tasks(session, user_of(request))
    shown = [row, *(other for other in found if other.id != task.id)]
    context: dict[str, object] = {"task": row, "tasks": shown, "status": "open"}
    context |= {"now": now(request), "refused": refused, "refused_task": task.id}
    name = "partials/task_row.html" if is_htmx(request) else "tasks/index.html"
    return render(request, name, context, status=refused.status)
