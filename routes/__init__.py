"""The whole URL map of Mazkira on one screen."""

from __future__ import annotations

from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from routes import (
    admin,
    alerts,
    api,
    appointments,
    auth,
    calls,
    channels,
    contacts,
    customers,
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
    reports,
    scripts,
    settings,
    surveys,
    task_acks,
    tasks,
    wallboard,
)
from routes.templating import TEMPLATES

STATIC = TEMPLATES.parent / "static"

routes = [
    # leads arriving by themselves; first, because they come by the thousand and routes are
    # tried in order: every route before them would be matched against every post
    Route("/intake/{business_slug}/form", intake.web_form, methods=["POST"]),
    Route("/intake/{business_slug}/form", intake.web_form_preflight, methods=["OPTIONS"]),
    Route("/intake/twilio/sms", intake.twilio_sms, methods=["POST"]),
    Route("/intake/twilio/voice", intake.twilio_voice, methods=["POST"]),
    Route("/intake/twilio/status", intake.twilio_status, methods=["POST"]),
    Route("/intake/whatsapp", intake.whatsapp_subscribe, methods=["GET"]),
    Route("/intake/whatsapp", intake.whatsapp_events, methods=["POST"]),
    Route("/intake/email", intake.email, methods=["POST"]),
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
    Route("/portal/appointments", appointments.portal, methods=["GET"]),
    Route(
        "/portal/businesses/{business_id}/calendar-feed",
        appointments.revoke_feed,
        methods=["POST"],
    ),
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
    Route("/leads/{lead_id}/appointments", appointments.book, methods=["POST"]),
    Route("/appointments/{appointment_id}/cancel", appointments.cancel, methods=["POST"]),
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
    # customer records: import, A/B/C on demand, retention, privacy requests
    Route("/contacts/import", customers.import_page, methods=["GET", "POST"]),
    Route("/contacts/import/report.csv", customers.import_report, methods=["POST"]),
    Route("/contacts/settings", customers.settings_page, methods=["GET"]),
    Route("/contacts/classify", customers.classify, methods=["POST"]),
    Route("/contacts/settings/{business_id}/retention", customers.set_retention, methods=["POST"]),
    Route("/contacts/{contact_id}/export", customers.export, methods=["POST"]),
    Route("/contacts/{contact_id}/erase", customers.erase, methods=["POST"]),
    Route("/contacts/{contact_id}", contacts.show, methods=["GET"]),
    Route("/contacts/{contact_id}", contacts.update, methods=["POST"]),
    # the user's own settings
    Route("/settings/tokens", settings.tokens, methods=["GET"]),
    Route("/settings/tokens", settings.create_token, methods=["POST"]),
    Route("/settings/tokens/{token_id}/revoke", settings.revoke_token, methods=["POST"]),
    # the agency's administration
    Route("/agency/ratings", feedback.ratings, methods=["GET"]),
    Route("/agency/reports", reports.page, methods=["GET"]),
    Route("/agency/reports/secretaries.csv", reports.secretaries_csv, methods=["GET"]),
    Route("/agency/reports/billing.csv", reports.billing_csv, methods=["GET"]),
    Route("/agency/reports.xlsx", reports.xlsx_export, methods=["GET"]),
    Route("/agency/wallboard", wallboard.page, methods=["GET"]),
    Route("/agency/audit", admin.audit, methods=["GET"]),
    Route("/agency/users", admin.users, methods=["GET"]),
    Route("/agency/users", admin.invite, methods=["POST"]),
    Route("/agency/users/{user_id}/role", admin.change_role, methods=["POST"]),
    Route("/agency/users/{user_id}/active", admin.set_user_active, methods=["POST"]),
    Route("/agency/users/{user_id}/password", admin.reset_password, methods=["POST"]),
    Route("/agency/users/{user_id}/sessions/end", admin.end_sessions, methods=["POST"]),
    Route("/agency/businesses/new", admin.new_business, methods=["GET"]),
    Route("/agency/businesses", admin.create_business, methods=["POST"]),
    Route("/agency/businesses/{business_id}", admin.business, methods=["GET"]),
    Route("/agency/businesses/{business_id}", admin.update_business, methods=["POST"]),
    Route("/agency/businesses/{business_id}/active", admin.set_business_active, methods=["POST"]),
    Route("/agency/businesses/{business_id}/assignments", admin.assign, methods=["POST"]),
    Route(
        "/agency/businesses/{business_id}/assignments/{user_id}/remove",
        admin.unassign,
        methods=["POST"],
    ),
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
    # a new or reset user setting a password from the signed link the agency sent
    Route("/invite/{token}", admin.password_form, methods=["GET"]),
    Route("/invite/{token}", admin.set_password, methods=["POST"]),
    # an owner answering a hand-off from the signed link in his message, without signing in
    Route("/ack/{token}", task_acks.page, methods=["GET"]),
    Route("/ack/{token}", task_acks.confirm, methods=["POST"]),
    # a customer's survey after a won lead, and a business's calendar feed: signed links
    Route("/survey/{token}", surveys.page, methods=["GET"]),
    Route("/survey/{token}", surveys.answer, methods=["POST"]),
    Route("/calendar/{token}.ics", appointments.feed, methods=["GET"]),
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
