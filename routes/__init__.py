"""The whole URL map of Mazkira on one screen."""

from __future__ import annotations

from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from routes import (
    alerts,
    auth,
    calls,
    contacts,
    health,
    home,
    intake,
    leads,
    live,
    policies,
    scripts,
    tasks,
)
from routes.templating import TEMPLATES

STATIC = TEMPLATES.parent / "static"

routes = [
    # signing in, and each role's home
    Route("/", auth.home, methods=["GET"]),
    Route("/login", auth.login_form, methods=["GET"]),
    Route("/login", auth.login, methods=["POST"]),
    Route("/logout", auth.logout, methods=["POST"]),
    Route("/locale", auth.switch_locale, methods=["POST"]),
    Route("/portal", home.portal, methods=["GET"]),
    Route("/agency", home.agency, methods=["GET"]),
    # the secretary's workspace
    Route("/inbox", leads.inbox, methods=["GET"]),
    Route("/leads/new", leads.new_lead_form, methods=["GET"]),
    Route("/leads", leads.create_lead, methods=["POST"]),
    Route("/leads/{lead_id}", leads.show_lead, methods=["GET"]),
    Route("/leads/{lead_id}/claim", leads.claim, methods=["POST"]),
    Route("/leads/{lead_id}/release", leads.release, methods=["POST"]),
    Route("/leads/{lead_id}/reassign", leads.reassign, methods=["POST"]),
    Route("/leads/{lead_id}/stage", leads.move_stage, methods=["POST"]),
    Route("/leads/{lead_id}/calls", calls.start, methods=["POST"]),
    Route("/leads/{lead_id}/notes", calls.add_note, methods=["POST"]),
    Route("/leads/{lead_id}/tasks", calls.hand_off, methods=["POST"]),
    Route("/calls/{call_id}/autosave", calls.autosave, methods=["POST"]),
    Route("/calls/{call_id}/wrap-up", calls.wrap_up, methods=["POST"]),
    Route("/alerts", alerts.alert_list, methods=["GET"]),
    Route("/alerts/{alert_id}/ack", alerts.acknowledge, methods=["POST"]),
    Route("/tasks", tasks.task_list, methods=["GET"]),
    Route("/tasks/{task_id}/status", tasks.set_status, methods=["POST"]),
    Route("/tasks/{task_id}/ack", tasks.acknowledge, methods=["POST"]),
    Route("/contacts", contacts.search, methods=["GET"]),
    Route("/contacts/lookup", contacts.lookup, methods=["GET"]),
    Route("/contacts/{contact_id}", contacts.show, methods=["GET"]),
    Route("/contacts/{contact_id}", contacts.update, methods=["POST"]),
    # the agency's administration
    Route("/agency/businesses/{business_id}/script", scripts.editor, methods=["GET"]),
    Route("/agency/businesses/{business_id}/script", scripts.save, methods=["POST"]),
    Route("/agency/businesses/{business_id}/sla", policies.policies, methods=["GET"]),
    Route("/agency/businesses/{business_id}/sla", policies.save_policy, methods=["POST"]),
    # leads arriving by themselves
    Route("/intake/{business_slug}/form", intake.web_form, methods=["POST"]),
    # the live console: one socket per open page
    WebSocketRoute("/ws", live.live_socket),
    # machines
    Route("/healthz", health.healthz, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
