"""For load balancers, orchestrators and monitoring: `/healthz` (alive, and how the database
and Redis are), `/readyz` (fit to take traffic: database and Redis answer, migrations current)
and `/metrics` (Prometheus, behind `METRICS_TOKEN`)."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from console.base.health import check, ready
from console.base.metrics import CONTENT_TYPE


async def healthz(request: Request) -> Response:
    state = await check(request.app.state.db, request.app.state.redis)
    return JSONResponse(state, status_code=200 if state["database"] == "ok" else 503)


async def readyz(request: Request) -> Response:
    state = await ready(request.app.state.db, request.app.state.redis)
    fit = all(value in ("ok", "disabled") for value in state.values())
    return JSONResponse(state, status_code=200 if fit else 503)


async def metrics(request: Request) -> Response:
    """Only for `Authorization: Bearer <METRICS_TOKEN>`; with no token set, there is no such
    page (404), so an unconfigured console shows nothing of its traffic."""
    token = request.app.state.settings.metrics_token
    if not token:
        return PlainTextResponse("Not found.", status_code=404)
    given = request.headers.get("authorization", "")
    scheme, _, secret = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(secret.encode(), token.encode()):
        return PlainTextResponse(
            "A bearer token (METRICS_TOKEN) is needed.",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body = await request.app.state.metrics.render(request.app.state.db)
    return Response(body, media_type=CONTENT_TYPE)
