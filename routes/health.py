"""Liveness for load balancers and people: the database and Redis, each ok, down or disabled."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from console.base.health import check


async def healthz(request: Request) -> Response:
    state = await check(request.app.state.db, request.app.state.redis)
    return JSONResponse(state, status_code=200 if state["database"] == "ok" else 503)
