"""Starlette's router, handed only the routes a path can match: those whose first segment is the
path's own (`/tasks/{task_id}` for `/tasks/…`) and those that start with a parameter, in the URL
map's order. Starlette tries every route in turn, so a request for a route near the end of the
map's two hundred (the API's) matched two hundred patterns first, and a 404 four hundred."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Mount, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send


def first_segment(path: str) -> str:
    """`tasks` of `/tasks/1`, `` of `/`."""
    return path.split("/", 2)[1] if path.startswith("/") else ""


def segment_of(route: BaseRoute) -> str | None:
    """The literal first segment every path this route matches begins with, or None when it
    may match paths of any (a parameter there, a host, a route of another kind)."""
    if not isinstance(route, (Route, WebSocketRoute, Mount)):
        return None
    segment = first_segment(route.path)
    if "{" in segment or (isinstance(route, Mount) and not route.path):
        return None
    return segment


class SegmentRouter(Router):
    """A router whose match for a request runs over the routes of its path's first segment."""

    def __init__(self, routes: Sequence[BaseRoute], **kwargs: Any) -> None:
        super().__init__(routes=routes, **kwargs)
        self._index()

    def _index(self) -> None:
        """Group the routes by first segment; done again when a route is added later
        (`add_route`, or a test's own appended to `routes`), so every route stays reachable."""
        self.indexed = len(self.routes)
        keyed = [(segment_of(route), route) for route in self.routes]
        anywhere = [route for key, route in keyed if key is None]
        self.by_segment: dict[str, Router] = {}
        for segment in {key for key, _ in keyed if key is not None}:
            chosen = [route for key, route in keyed if key in (segment, None)]
            self.by_segment[segment] = self._narrowed(chosen)
        self.elsewhere = self._narrowed(anywhere)

    def _narrowed(self, routes: list[BaseRoute]) -> Router:
        return Router(routes=routes, redirect_slashes=self.redirect_slashes, default=self.default)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await super().app(scope, receive, send)
            return
        scope.setdefault("router", self)  # `url_for` resolves over every route
        if len(self.routes) != self.indexed:
            self._index()
        segment = first_segment(get_route_path(scope))
        await self.by_segment.get(segment, self.elsewhere).app(scope, receive, send)
