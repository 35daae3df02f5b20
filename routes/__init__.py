"""The whole URL map of Mazkira on one screen."""

from __future__ import annotations

from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from routes import (
    alerts,
    api,
    auth,
    calls,
    channels,
    contacts,
    feedback,
    health,
    home,
    hours,
    intake,
    kpis,
    leads,
    live,
    policies,
    portal,
    scripts,
    settings,
    task_acks,
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
    Route("/portal", portal.index, methods=["GET"]),
    Route("/agency", home.agency, methods=["GET"]),
    # the numbers of a business (its owner, the agency): on screen and as files
    Route("/portal/kpis", kpis.page, methods=["GET"]),
    Route("/portal/kpis.csv", kpis.csv_export, methods=["GET"]),
    Route("/portal/kpis.xlsx", kpis.xlsx_export, methods=["GET"]),
    # the owner's portal: what was handled (rated, commented), his tasks, status and settings
    Route("/portal/leads/{lead_id}", portal.lead, methods=["GET"]),
    Route("/portal/interactions/{interaction_id}/rating", portal.rate, methods=["POST"]),
    Route("/portal/tasks/{task_id}/ack", portal.acknowledge_task, methods=["POST"]),
    Route("/portal/tasks/{task_id}/done", portal.finish_task, methods=["POST"]),
    Route("/portal/tasks/{task_id}/comments", portal.comment_on_task, methods=["POST"]),
    Route("/portal/availability", portal.set_availability, methods=["POST"]),
    Route("/portal/businesses/{business_id}/script", portal.script_editor, methods=["GET"]),
    Route("/portal/businesses/{business_id}/script", portal.save_script, methods=["POST"]),
    Route("/portal/businesses/{business_id}/hours", hours.owner_editor, methods=["GET"]),
    Route("/portal/businesses/{business_id}/hours", hours.owner_save, methods=["POST"]),
    Route(
        "/portal/businesses/{business_id}/hours/exceptions",
        hours.owner_add_exception,
        methods=["POST"],
    ),
    Route(
        "/portal/businesses/{business_id}/hours/exceptions/remove",
        hours.owner_remove_exception,
        methods=["POST"],
    ),
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
    Route("/leads/{lead_id}/replies", calls.reply, methods=["POST"]),
    Route("/leads/{lead_id}/tasks", calls.hand_off, methods=["POST"]),
    Route("/leads/{lead_id}/comments", feedback.comment_on_lead, methods=["POST"]),
    Route("/calls/{call_id}/autosave", calls.autosave, methods=["POST"]),
    Route("/calls/{call_id}/wrap-up", calls.wrap_up, methods=["POST"]),
    Route("/alerts", alerts.alert_list, methods=["GET"]),
    Route("/alerts/{alert_id}/ack", alerts.acknowledge, methods=["POST"]),
    Route("/tasks", tasks.task_list, methods=["GET"]),
    Route("/tasks/{task_id}/status", tasks.set_status, methods=["POST"]),
    Route("/tasks/{task_id}/ack", tasks.acknowledge, methods=["POST"]),
    Route("/contacts", contacts.search, methods=["GET"]),
    Route("/contacts/lookup", contacts.lookup, methods=["GET"]),
    Route("/contacts/silent", contacts.silent, methods=["GET"]),
    Route("/contacts/{contact_id}", contacts.show, methods=["GET"]),
    Route("/contacts/{contact_id}", contacts.update, methods=["POST"]),
    # the user's own settings
    Route("/settings/tokens", settings.tokens, methods=["GET"]),
    Route("/settings/tokens", settings.create_token, methods=["POST"]),
    Route("/settings/tokens/{token_id}/revoke", settings.revoke_token, methods=["POST"]),
    # the agency's administration
    Route("/agency/ratings", feedback.ratings, methods=["GET"]),
    Route("/agency/businesses/{business_id}/script", scripts.editor, methods=["GET"]),
    Route("/agency/businesses/{business_id}/script", scripts.save, methods=["POST"]),
    Route(
        "/agency/businesses/{business_id}/script/owner-publish",
        scripts.owner_may_publish,
        methods=["POST"],
    ),
    Route("/agency/businesses/{business_id}/replies", scripts.save_reply, methods=["POST"]),
    Route(
        "/agency/businesses/{business_id}/replies/{reply_id}/remove",
        scripts.remove_reply,
        methods=["POST"],
    ),
    Route("/agency/businesses/{business_id}/sla", policies.policies, methods=["GET"]),
    Route("/agency/businesses/{business_id}/sla", policies.save_policy, methods=["POST"]),
    Route(
        "/agency/businesses/{business_id}/sla/tasks", policies.save_task_policy, methods=["POST"]
    ),
    Route(
        "/agency/businesses/{business_id}/sla/reminders", policies.save_reminders, methods=["POST"]
    ),
    Route("/agency/businesses/{business_id}/hours", hours.editor, methods=["GET"]),
    Route("/agency/businesses/{business_id}/hours", hours.save, methods=["POST"]),
    Route(
        "/agency/businesses/{business_id}/hours/exceptions", hours.add_exception, methods=["POST"]
    ),
    Route(
        "/agency/businesses/{business_id}/hours/exceptions/remove",
        hours.remove_exception,
        methods=["POST"],
    ),
    Route("/agency/businesses/{business_id}/channels", channels.channels, methods=["GET"]),
    Route("/agency/businesses/{business_id}/channels/key", channels.rotate_key, methods=["POST"]),
    Route("/agency/businesses/{business_id}/lines", channels.add_line, methods=["POST"]),
    Route(
        "/agency/businesses/{business_id}/lines/{line_id}/remove",
        channels.remove_line,
        methods=["POST"],
    ),
    # an owner answering a hand-off from the signed link in his message, without signing in
    Route("/ack/{token}", task_acks.page, methods=["GET"]),
    Route("/ack/{token}", task_acks.confirm, methods=["POST"]),
    # leads arriving by themselves
    Route("/intake/twilio/sms", intake.twilio_sms, methods=["POST"]),
    Route("/intake/twilio/voice", intake.twilio_voice, methods=["POST"]),
    Route("/intake/twilio/status", intake.twilio_status, methods=["POST"]),
    Route("/intake/whatsapp", intake.whatsapp_subscribe, methods=["GET"]),
    Route("/intake/whatsapp", intake.whatsapp_events, methods=["POST"]),
    Route("/intake/email", intake.email, methods=["POST"]),
    Route("/intake/{business_slug}/form", intake.cross_site_form, methods=["POST", "OPTIONS"]),
    # the JSON API v1 for owners' integrations (bearer token; described by its openapi.json)
    Route("/api/v1/openapi.json", api.document, methods=["GET"]),
    Route("/api/v1/leads", api.list_leads, methods=["GET"]),
    Route("/api/v1/leads", api.create_lead, methods=["POST"]),
    Route("/api/v1/leads/{lead_id}", api.show_lead, methods=["GET"]),
    Route("/api/v1/leads/{lead_id}/interactions", api.lead_interactions, methods=["GET"]),
    Route("/api/v1/interactions/{interaction_id}", api.show_interaction, methods=["GET"]),
    Route("/api/v1/contacts", api.list_contacts, methods=["GET"]),
    Route("/api/v1/contacts/{contact_id}", api.show_contact, methods=["GET"]),
    Route("/api/v1/tasks", api.list_tasks, methods=["GET"]),
    Route("/api/v1/tasks/{task_id}", api.show_task, methods=["GET"]),
    Route("/api/v1/tasks/{task_id}/done", api.mark_task_done, methods=["POST"]),
    Route("/api/v1/kpis", api.kpis, methods=["GET"]),
    # the live console: one socket per open page
    WebSocketRoute("/ws", live.live_socket),
    # machines
    Route("/healthz", health.healthz, methods=["GET"]),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]
