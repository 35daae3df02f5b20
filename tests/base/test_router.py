"""The router (`routes/router.py`) narrows a request to the routes of its path's first segment:
every path answers as Starlette's own router answers it over the whole URL map (the route, a
405, a redirect to the slash-less address, a 404)."""

from __future__ import annotations

import copy
import re
from typing import Any

from starlette.routing import BaseRoute, Router

from routes import routes
from routes.router import SegmentRouter


def _paths() -> set[str]:
    found = {"/", "//", "/nothing", "/api/v1/nothing", "/static/app.css"}
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x1", getattr(route, "path", "/")) or "/"
        found |= {path, path + "/", path.rstrip("/") or "/", path + "/more"}
    return found


async def _answer(router: Router, path: str, method: str, kind: str) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": kind,
        "path": path,
        "root_path": "",
        "method": method,
        "headers": [],
        "query_string": b"",
    }
    answer: dict[str, Any] = {}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["location"] = dict(message["headers"]).get(b"location")

    async def receive() -> Any:
        return {"type": "http.request"}

    try:
        await router.app(scope, receive, send)
    except Exception as error:  # the app's exception handlers answer these
        answer["raised"] = (type(error).__name__, getattr(error, "status_code", None))
    answer["route"] = getattr(scope.get("route"), "path", None)
    return answer


def _stubbed(route: BaseRoute) -> BaseRoute:
    """A copy of the route that answers 299 (the app's own routes are left as they are)."""
    route = copy.copy(route)

    async def handle(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 299, "headers": []})

    route.handle = handle  # type: ignore[method-assign]
    return route


async def test_every_path_reaches_what_starlettes_router_reaches() -> None:
    stubbed = [_stubbed(route) for route in routes]
    plain, narrowed = Router(stubbed), SegmentRouter(stubbed)
    for path in sorted(_paths()):
        for method in ("GET", "POST", "DELETE"):
            expected = await _answer(plain, path, method, "http")
            assert await _answer(narrowed, path, method, "http") == expected, (method, path)
        expected = await _answer(plain, path, "GET", "websocket")
        assert await _answer(narrowed, path, "GET", "websocket") == expected, path
