"""The whole URL map of Mazkira on one screen."""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from routes import auth, health, home
from routes.templating import TEMPLATES

STATIC = TEMPLATES.parent / "static"

routes = [
    Route("/", auth.home, methods=["GET"]),
    Route("/login", auth.login_form, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/locale", auth.switch_locale, methods=["POST"]),
    Route("/inbox", home.inbox, methods=["GET"]),
    Route("/portal", home.portal, methods=["GET"]),
    Route("/agency", home.agency, methods=["GET"]),
    Route("/healthz", health.healthz, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
