"""Task lists: what was handed to me (and, for a secretary, what I handed off)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from console.tasks import task_sla, tasks
from routes.access import safe_next, signed_in, user_of
from routes.forms import now, see_other, text
from routes.templating import render

STATUSES = ("open", "done", "cancelled")


@signed_in()
async def task_list(request: Request) -> Response:
    status = request.query_params.get("status", "open")
    status = status if status in STATUSES else "open"
    async with request.app.state.db.transaction(write=False) as session:
        found = await tasks.my_tasks(session, user_of(request), status=status)
    context = {"tasks": found, "status": status, "now": now(request)}
    return render(request, "tasks/index.html", context, block="list")


@signed_in()
async def acknowledge(request: Request) -> Response:
    """The assignee says he has seen the task."""
    async with request.app.state.db.transaction() as session:
        await task_sla.acknowledge_task(
            session, user_of(request), request.path_params["task_id"], now=now(request)
        )
    return see_other(request, "/tasks")


@signed_in()
async def set_status(request: Request) -> Response:
    form = await request.form()
    async with request.app.state.db.transaction() as session:
        await tasks.set_task_status(
            session,
            user_of(request),
            request.path_params["task_id"],
            text(form, "status"),
            now=now(request),
        )
    return see_other(request, safe_next(text(form, "next"), "/tasks"))
