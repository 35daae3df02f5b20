"""Security: one business's people never reach another business's objects, by any route.

The test walks `app.routes` itself. Every route whose path names an object (an id, a business
slug or a signed token) is requested by a secretary and an owner of business A (and by an API
token of each for /api/v1) with business B's object in it: the answer is 404, B's data is not
in it, and no row of the database changed. A route with a path parameter this file does not
know how to fill fails the test, and so does a route without one that is not classified below,
so the walk stays complete as the app grows. The live socket's ids (its hello's cursor and
page) are the last test here; tests/live/test_access.py follows access as it changes.

Covered elsewhere, not repeated: the tenancy helper itself (test_tenancy.py::
test_each_role_sees_exactly_its_businesses), an owner's portal in depth
(test_portal.py::test_an_owner_never_reaches_another_business), privacy requests
(test_customers.py::test_privacy_over_http_and_another_business_is_404), KPI numbers and files
(test_kpis.py::test_an_owner_never_sees_another_business_s_numbers), the API's lists
(test_api.py::test_an_owner_works_through_the_api_and_sees_only_his_business), live fan-out
(test_live.py::test_a_new_lead_reaches_every_console_of_its_business_and_no_other).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from itsdangerous import URLSafeSerializer
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from console.agency.admin import password_link_token
from console.base.db import Database
from console.calendar import calendar_feed
from console.calendar.appointments import AppointmentLinks
from console.channels import lines, webhooks
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls, canned_replies, leads
from console.leads.call_notices import CallLinks
from console.leads.surveys import SurveyLinks
from console.people import api_tokens
from console.tasks import paging, tasks
from console.tasks.task_links import TaskLinks
from models import (
    Alert,
    Appointment,
    Base,
    Business,
    ChangeRequest,
    Notification,
    Survey,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from models.recordings import Recording
from models.voice import Call
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.served import Browser, close_code, served

NOW = datetime.now(UTC)
FORGER_KEY = "not-the-console-secret-key-but-long-enough-to-sign"
# What must never show on a page of business A's people.
B_MARKERS = ("מרפאת סוד", "Zelda Secretb", "SECRET-B-SUBJECT", "SECRET-B-TASK", "SECRET-B-REPLY")
# Written by every request on purpose (at most once a minute), not business data.
VOLATILE = frozenset({"last_seen_at", "last_used_at"})


@dataclass
class World:
    a: Business
    b: Business
    secretary_a: User
    owner_a: User
    admin: User
    owner_b: User
    secretary_b: User
    ids: dict[str, str]  # path parameter -> B's object of that kind
    tokens: dict[str, str]  # signed tokens for B's objects, made with another key
    api: dict[str, str]  # user e-mail -> API secret
    lead_a: str


async def world(db: Database) -> World:
    async with db.transaction() as session:
        a = await make_business(session, name="אינסטלציה גלויה")
        b = await make_business(session, name="מרפאת סוד", always_open=True)
        secretary_a = await make_user(session, "secretary", a)
        owner_a = await make_user(session, "owner", a)
        admin = await make_user(session, "admin")
        secretary_b = await make_user(session, "secretary", b)
        owner_b = await make_user(session, "owner", b)
        lead_a = await arrivals.create_lead(
            session, secretary_a, NewLead(business_id=str(a.id), phone="052-7654321"), now=NOW
        )
        new = NewLead(
            business_id=str(b.id),
            phone="054-2345678",
            name="Zelda Secretb",
            subject="SECRET-B-SUBJECT",
        )
        lead = await arrivals.create_lead(session, secretary_b, new, now=NOW)
        await leads.claim_lead(session, secretary_b, lead.id, now=NOW)
        done = await calls.start_interaction(
            session, secretary_b, lead.id, kind="inbound_call", now=NOW
        )
        await calls.wrap_up(
            session, secretary_b, done.id, notes="n", summary="s", answers={}, outcome="answered",
            now=NOW,
        )  # fmt: skip
        draft = await calls.start_interaction(
            session, secretary_b, lead.id, kind="outbound_call", now=NOW
        )
        handoff = tasks.HandOff(
            assignee_id=str(owner_b.id), title="SECRET-B-TASK", due="2031-01-05T12:00"
        )
        task = await tasks.hand_off(session, secretary_b, lead.id, handoff, now=NOW)
        meeting = Appointment(
            business_id=b.id,
            lead_id=lead.id,
            contact_id=lead.contact_id,
            starts_at=NOW + timedelta(days=1),
            ends_at=NOW + timedelta(days=1, hours=1),
            title="SECRET-B-SUBJECT",
        )
        alert = Alert(
            key=f"lead:{lead.id}:first_response:100",
            business_id=b.id,
            lead_id=lead.id,
            kind="first_response",
            level="breach",
            percent=100,
            due_at=NOW,
        )
        survey = Survey(business_id=b.id, lead_id=lead.id, contact_id=lead.contact_id)
        ringing = Call(
            business_id=b.id,
            lead_id=lead.id,
            sip_call_id="SECRET-B-CALL@sip.example",
            direction="in",
            caller="+972523456789",
            state="ringing",
            arrived_at=NOW,
            ringing=[secretary_b.id.hex],
            rung=[secretary_b.id.hex],
        )
        session.add_all([meeting, alert, survey, ringing])
        hook = WebhookEndpoint(
            business_id=b.id,
            url="https://hooks.example.com/b",
            events=["lead.created"],
            secret=webhooks.new_secret(),
            created_by_id=admin.id,
        )
        session.add(hook)
        await session.flush()
        hooked = WebhookDelivery(
            endpoint_id=hook.id,
            business_id=b.id,
            event_id=1,
            event_type="lead.created",
            payload={"type": "lead.created", "data": {"subject": "SECRET-B-SUBJECT"}},
        )
        session.add(hooked)
        failed_send = Notification(
            idempotency_key=f"failed:{b.id}",
            business_id=b.id,
            user_id=owner_b.id,
            channel="sms",
            recipient="+972523456789",
            subject="SECRET-B-SUBJECT",
            status="failed",
            last_error="no provider configured for sms",
        )
        session.add(failed_send)
        reply = await canned_replies.save_canned_reply(
            session, b, locale="he", title="SECRET-B-REPLY", body="שלום", now=NOW
        )
        line = await lines.add_line(session, b, "sms", "+97235557777")
        asked = ChangeRequest(business_id=b.id, asked={"kind": "hours"}, reasons=["timezone"])
        session.add(asked)
        recording = Recording(
            business_id=b.id,
            lead_id=lead.id,
            kind="call",
            key=f"{b.id}/call/secret.wav",
            content_type="audio/wav",
            size_bytes=1,
            seconds=1,
            created_at=NOW,
        )
        session.add(recording)
        token_b = await api_tokens.create_token(session, secretary_b, "b", now=NOW)
        api = {
            user.email: (await api_tokens.create_token(session, user, "a", now=NOW)).secret
            for user in (secretary_a, owner_a)
        }
        await session.flush()
        ids = {
            "lead_id": lead.id,
            "interaction_id": done.id,
            "call_id": draft.id,
            "task_id": task.id,
            "appointment_id": meeting.id,
            "alert_id": alert.id,
            "contact_id": lead.contact_id,
            "business_id": b.id,
            "user_id": secretary_b.id,
            "token_id": token_b.token.id,
            "reply_id": reply.id,
            "line_id": line.id,
            "business_slug": b.slug,
            "sip_call_id": ringing.sip_call_id,
            "endpoint_id": hook.id,
            "request_id": asked.id,
            "delivery_id": hooked.id,
            "recording_id": recording.id,
            "notification_id": failed_send.id,
        }
        forged = {
            "/invite/{token}": password_link_token(FORGER_KEY, owner_b),
            "/ack/{token}": TaskLinks(FORGER_KEY, None).token(task.id, owner_b.id, "done", now=NOW),
            "/ack/on-call/{token}": URLSafeSerializer(FORGER_KEY, salt=paging.SALT).dumps(
                uuid.uuid4().hex
            ),
            "/survey/{token}": SurveyLinks(FORGER_KEY, None).token(survey.id, now=NOW),
            "/ack/call/{token}": CallLinks(FORGER_KEY, None).token(done.id, owner_b.id, now=NOW),
            "/calendar/{token}.ics": calendar_feed.feed_token(FORGER_KEY, b),
            "/meeting/{token}": AppointmentLinks(FORGER_KEY, None).token(meeting),
        }
    return World(
        a, b, secretary_a, owner_a, admin, owner_b, secretary_b,
        {k: str(v) for k, v in ids.items()}, forged, api, str(lead_a.id),
    )  # fmt: skip


def key() -> str:
    return uuid.uuid4().hex


# A body that would pass each form's own checks, so that only tenancy can refuse it.
BODIES: dict[str, dict[str, str]] = {
    "/portal/interactions/{interaction_id}/rating": {"stars": "1", "comment": "x"},
    "/portal/tasks/{task_id}/comments": {"body": "x"},
    "/portal/businesses/{business_id}/script": {"greeting": "שלום", "action": "save"},
    "/portal/businesses/{business_id}/hours": {"timezone": "Asia/Jerusalem"},
    "/portal/businesses/{business_id}/hours/exceptions": {"date": "2031-01-01", "kind": "closed"},
    "/portal/businesses/{business_id}/hours/exceptions/remove": {"date": "2031-01-01"},
    "/leads/{lead_id}/stage": {"stage": "contacted"},
    "/leads/{lead_id}/calls": {"kind": "inbound_call"},
    "/leads/{lead_id}/notes": {"notes": "x"},
    "/leads/{lead_id}/replies": {"channel": "sms", "text": "x"},
    "/leads/{lead_id}/tasks": {"title": "x", "due": "2031-01-05T12:00"},
    "/leads/{lead_id}/comments": {"body": "x"},
    "/leads/{lead_id}/appointments": {"day": "2031-01-05", "start": "10:00", "minutes": "30"},
    "/portal/appointments/{appointment_id}/move": {
        "day": "2031-01-05",
        "start": "10:00",
        "minutes": "30",
    },
    "/calls/{call_id}/autosave": {"notes": "x"},
    "/calls/{call_id}/wrap-up": {"notes": "x", "outcome": "answered"},
    "/tasks/{task_id}/status": {"status": "done"},
    "/contacts/settings/{business_id}/retention": {"retention_days": "30"},
    "/contacts/{contact_id}/erase": {"confirm": "erase"},
    "/contacts/{contact_id}": {"name": "changed"},
    "/agency/users/{user_id}/role": {"role": "owner"},
    "/agency/users/{user_id}/addressed-as": {"addressed_as": "masculine"},
    "/agency/users/{user_id}/active": {"active": "0"},
    "/agency/businesses/{business_id}": {"name": "changed", "timezone": "Asia/Jerusalem"},
    "/agency/businesses/{business_id}/active": {"active": "0"},
    "/agency/businesses/{business_id}/script": {"greeting": "x", "action": "publish"},
    "/agency/businesses/{business_id}/script/owner-publish": {"allowed": "1"},
    "/agency/businesses/{business_id}/replies": {"locale": "he", "title": "t", "body": "b"},
    "/agency/businesses/{business_id}/sla": {"minutes": "10", "warn_at_percent": "50"},
    "/agency/businesses/{business_id}/plan": {"monthly_fee": "100"}
    | dict.fromkeys(("included_calls", "included_minutes", "included_messages"), "1")
    | dict.fromkeys(("call_price", "minute_price", "message_price"), "1"),
    "/agency/businesses/{business_id}/sla/tasks": {
        "acknowledge_minutes": "60",
        "remind_before_due_minutes": "30",
    },
    "/agency/businesses/{business_id}/lines": {"channel": "sms", "address": "+97235550001"},
    "/invite/{token}": {"password": "a-long-new-password", "repeated": "a-long-new-password"},
    "/portal/businesses/{business_id}/notices": {"calls": "every", "digest_hour": "7"},
    "/agency/businesses/{business_id}/notices": {"calls": "every", "digest_hour": "7"},
    "/survey/{token}": {"stars": "5", "recommend": "yes"},
    "/phone/transfer/{sip_call_id}": {"number": "+972527654321", "kind": "blind"},
}
# Routes whose only object is a signed token in the path: a forged one is refused as such.
SIGNED_LINKS = {
    "/invite/{token}": 400,
    "/ack/{token}": 400,
    "/ack/on-call/{token}": 400,
    "/ack/call/{token}": 400,
    "/survey/{token}": 400,
    "/meeting/{token}": 400,
}
# Routes without a path parameter. Those that take a business (or a person) in the query or the
# form are requested with B's below; the others name no object at all.
FOREIGN_IN_QUERY_OR_FORM = {
    ("GET", "/inbox"),
    ("GET", "/leads/new"),
    ("POST", "/leads"),
    ("GET", "/portal"),
    ("POST", "/portal/appointments"),  # an owner's booking names the business in the form
    ("GET", "/portal/kpis"),
    ("GET", "/portal/kpis.csv"),
    ("GET", "/portal/kpis.xlsx"),
    ("GET", "/portal/billing"),
    ("GET", "/contacts"),
    ("GET", "/contacts/lookup"),
    ("GET", "/contacts/silent"),
    ("GET", "/contacts/import"),
    ("POST", "/contacts/import"),
    ("POST", "/contacts/classify"),
    ("GET", "/agency/ratings"),
    ("GET", "/agency/audit"),
    ("GET", "/agency/audit.csv"),
    ("GET", "/api/v1/leads"),
    ("POST", "/api/v1/leads"),
    ("GET", "/api/v1/contacts"),
    ("GET", "/api/v1/tasks"),
    ("GET", "/api/v1/kpis"),
}
NO_OBJECT = {
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/login/code"),  # her own second step, by its signed token
    ("POST", "/logout"),
    ("POST", "/locale"),
    ("GET", "/agency"),
    ("POST", "/portal/availability"),  # his own status
    # the installed portal: the app's manifest and worker, his own offline list, his own
    # browsers' subscriptions (one taken over is the browser's, not another business's data)
    ("GET", "/manifest.webmanifest"),
    ("GET", "/sw.js"),
    ("GET", "/portal/offline"),
    ("GET", "/portal/notifications"),
    ("POST", "/portal/notifications"),
    ("POST", "/portal/notifications/test"),
    ("POST", "/portal/push/subscriptions"),
    ("POST", "/portal/push/subscriptions/remove"),
    ("GET", "/portal/appointments"),
    ("GET", "/alerts"),
    ("GET", "/tasks"),
    ("POST", "/contacts/import/report.csv"),  # the posted report, echoed as a file
    ("GET", "/contacts/settings"),
    ("GET", "/settings/tokens"),
    ("POST", "/settings/tokens"),
    ("GET", "/settings/two-factor"),
    ("POST", "/settings/two-factor/start"),
    ("POST", "/settings/two-factor/confirm"),
    ("POST", "/settings/two-factor/disable"),
    ("POST", "/agency/two-factor"),  # the agency's rule
    ("GET", "/agency/reports"),
    ("GET", "/agency/reports/secretaries.csv"),
    ("GET", "/agency/reports/billing.csv"),
    ("GET", "/agency/reports.xlsx"),
    ("GET", "/agency/billing"),  # every business's bill for a month (admins only)
    ("GET", "/agency/billing.csv"),
    ("GET", "/agency/billing.xlsx"),
    ("GET", "/agency/wallboard"),
    ("GET", "/agency/users"),
    ("POST", "/agency/users"),
    ("GET", "/agency/requests"),  # every business's requests (admins only)
    ("GET", "/agency/businesses/new"),
    ("POST", "/agency/businesses"),
    # webhooks: the business is the one owning the line the provider delivered to
    ("POST", "/intake/twilio/sms"),
    ("POST", "/intake/twilio/voice"),
    ("POST", "/intake/twilio/status"),
    ("GET", "/intake/whatsapp"),
    ("POST", "/intake/whatsapp"),
    ("POST", "/intake/email"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),  # the process's own numbers, for its bearer token only
    ("GET", "/settings/addressing"),  # her own form of address
    ("POST", "/settings/addressing"),
    # the SIP server's questions and reports, signed with its secret; the business is the one
    # owning the number called (tests/voice/test_sip_http.py)
    ("POST", "/sip/route"),
    ("POST", "/sip/events"),
    ("POST", "/sip/voicemail"),
    ("GET", "/phone/credentials"),  # her own phone's
    ("GET", "/agent/state"),  # her own state
    ("POST", "/agent/state"),
    ("GET", "/agency/reports/states.csv"),  # the agency's report (admins only)
    ("GET", "/demo/outbox"),  # the demo's outbox (admins only, demo mode only)
    ("GET", "/agency/webhooks"),  # the agency's outbound webhooks (admins only)
    ("POST", "/agency/webhooks"),
    ("GET", "/api/v1/webhooks"),  # the same through the API (an admin's token only)
    ("POST", "/api/v1/webhooks"),
    ("GET", "/agency/notifications"),  # the agency's failed sends (admins only)
}
SOCKETS = {"/ws"}  # test_the_live_socket_refuses_another_business_s_ids


def endpoints(app: Starlette) -> list[tuple[str, str, set[str]]]:
    """(method, path, path parameters) of every HTTP route; fails on what it cannot walk."""
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert route.path == "/static", f"a mount this test does not know: {route.path}"
        elif isinstance(route, WebSocketRoute):
            assert route.path in SOCKETS, f"a websocket route this test does not know: {route.path}"
        else:
            assert isinstance(route, Route), route
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                found.append((method, route.path, set(route.param_convertors)))
    return found


async def fingerprint(db: Database) -> dict[str, list[str]]:
    """Every row of every table (bar the columns touched by any request)."""
    found = {}
    async with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.c if c.name not in VOLATILE]
            rows = (await session.execute(select(*columns))).all()
            found[table.name] = sorted(repr(tuple(row)) for row in rows)
    return found


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return [name for name in before if before[name] != after[name]]


async def as_user(app: Starlette, user: User, home: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    assert (await sign_in(client, user.email)).status_code == 303
    return client, await csrf_token(client, home)


async def test_every_route_answers_404_for_another_business_s_object(
    app: Starlette, db: Database
) -> None:
    w = await world(db)
    people = {
        "secretary": await as_user(app, w.secretary_a, "/inbox"),
        "owner": await as_user(app, w.owner_a, "/portal"),
    }
    admin, admin_token = await as_user(app, w.admin, "/agency")
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    anonymous_token = await csrf_token(anonymous)  # the set-password form is CSRF-checked
    before = await fingerprint(db)
    tried: list[str] = []
    unknown: list[str] = []

    async def check(answer: httpx.Response, expected: set[int], what: str) -> None:
        tried.append(what)
        assert answer.status_code in expected, (what, answer.status_code, answer.text[:300])
        for marker in B_MARKERS:
            assert marker not in answer.text, (what, marker)
        after = await fingerprint(db)
        assert not changed(before, after), (what, changed(before, after))

    for method, path, params in endpoints(app):
        if not params:
            if (method, path) not in FOREIGN_IN_QUERY_OR_FORM | NO_OBJECT:
                unknown.append(f"{method} {path}: say whether it takes an object")
            continue
        if params - {*w.ids, "token"}:
            unknown.append(f"{method} {path}: no way to fill {params - {*w.ids, 'token'}}")
            continue
        url = path
        for name in params:
            url = url.replace("{" + name + "}", w.tokens[path] if name == "token" else w.ids[name])
        body = {**BODIES.get(path, {}), "request_key": key()}
        what = f"{method} {url}"
        if "token" in params:
            expected = {SIGNED_LINKS.get(path, 404)}
            data = {**body, "csrf_token": anonymous_token} if method == "POST" else None
            answer = await anonymous.request(method, url, data=data)
            await check(answer, expected, what)
        elif path.startswith("/api/"):
            for secret in w.api.values():
                headers = {"Authorization": f"Bearer {secret}"}
                await check(await anonymous.request(method, url, headers=headers), {404}, what)
        elif path == "/intake/{business_slug}/form":  # A's key on B's form: not A's to post
            headers = {"X-Intake-Key": w.a.intake_key}
            answer = await anonymous.post(url, json={"phone": "054-3456789"}, headers=headers)
            await check(answer, {401}, what)
        else:
            for role, (client, token) in people.items():
                data = {**body, "csrf_token": token} if method == "POST" else None
                answer = await client.request(method, url, data=data)
                await check(answer, {404}, f"{what} as {role}")
            if "business_id" in params and len(params) == 2:
                # an admin sees both, but B's child under A's address is not there
                url = url.replace(w.ids["business_id"], str(w.a.id))
                data = {**body, "csrf_token": admin_token} if method == "POST" else None
                await check(await admin.request(method, url, data=data), {404}, f"{what} as admin")
    assert not unknown, "\n".join(unknown)
    assert len(tried) > 100

    await foreign_ids_in_queries_and_forms(w, people, anonymous, check)
    for client, _token in [*people.values(), (admin, "")]:
        await client.aclose()
    await anonymous.aclose()


async def foreign_ids_in_queries_and_forms(
    w: World, people: dict[str, tuple[httpx.AsyncClient, str]], anonymous: httpx.AsyncClient,
    check: Any,
) -> None:  # fmt: skip
    """B's business (or B's person) named in a query or a form field: 404, or a page without B."""
    b = w.ids["business_id"]
    pages = [
        f"/inbox?business={b}",
        f"/leads/new?business={b}",
        f"/portal?business={b}",
        f"/portal/kpis?business={b}",
        f"/portal/kpis.csv?business={b}",
        f"/portal/kpis.xlsx?business={b}",
        f"/portal/billing?business={b}",
        "/contacts?q=Zelda",
        f"/contacts/lookup?business_id={b}&phone=054-2345678",
        f"/contacts/silent?business_id={b}",
        "/contacts/import",
        f"/agency/ratings?business={b}",
        f"/agency/audit?business={b}",
    ]
    forms = [
        ("/leads", {"business_id": b, "phone": "053-3456789", "subject": "x"}),
        ("/contacts/import", {"business_id": b, "step": "import", "payload": "", "filename": ""}),
        ("/contacts/classify", {"business_id": b}),
        ("/portal/appointments", {"business_id": b, "phone": "053-3456789", "day": "2031-01-05",
                                  "start": "10:00", "minutes": "30"}),
        # A's own lead, handed to B's owner
        (f"/leads/{w.lead_a}/tasks", {"assignee_id": str(w.owner_b.id), "title": "x",
                                      "due": "2031-01-05T12:00"}),
    ]  # fmt: skip
    for role, (client, token) in people.items():
        for page in pages:
            answer = await client.get(page)
            await check(answer, {200, 404, 422}, f"GET {page} as {role}")
        for path, data in forms:
            answer = await client.post(path, data={**data, "csrf_token": token})
            await check(answer, {404, 422}, f"POST {path} as {role}")
    for secret in w.api.values():
        headers = {"Authorization": f"Bearer {secret}"}
        for page in ("leads", "contacts", "tasks"):
            answer = await anonymous.get(f"/api/v1/{page}?business={b}", headers=headers)
            await check(answer, {200, 404}, f"GET /api/v1/{page}?business=B")
            assert answer.status_code == 404 or answer.json()["items"] == []
        answer = await anonymous.get(f"/api/v1/kpis?business={b}", headers=headers)
        await check(answer, {404}, "GET /api/v1/kpis?business=B")
        lead = {"business_id": b, "phone": "053-3456789"}
        answer = await anonymous.post("/api/v1/leads", json=lead, headers=headers)
        await check(answer, {404}, "POST /api/v1/leads for B")


async def test_the_live_socket_refuses_another_business_s_ids(app: Starlette, db: Database) -> None:
    w = await world(db)
    async with served(app) as url:
        browser = await Browser(url).sign_in(w.secretary_a.email, "/inbox")
        mine = await browser.socket({"type": "hello", "page": f"lead:{w.lead_a}", "cursor": {}})
        ws = await browser.socket({"type": "hello", "page": f"lead:{w.ids['lead_id']}"})
        assert await close_code(ws) == 4404
        # B in a cursor (a page may hold a business its user has lost since): nothing of B is
        # replayed; what A's cursor asks for comes, and the socket stays open.
        cursor = {w.ids["business_id"]: 0, str(w.a.id): 0}
        ws = await browser.socket({"type": "hello", "page": "queue", "cursor": cursor})
        async with asyncio.timeout(5):
            while f'id="lead-{w.lead_a}"' not in (message := str(await ws.recv())):
                assert w.ids["business_id"] not in message and w.b.name not in message
        assert w.ids["business_id"] not in message
        await ws.close()
        assert await close_code(mine, within=0.5) is None  # her own lead's page stays open
        await mine.close()
        await browser.close()
