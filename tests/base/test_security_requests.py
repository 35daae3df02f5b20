"""Security of requests: CSRF on every state-changing route, no state change by GET, sign-in
throttling per address behind a proxy, and X-Forwarded-For believed only from a trusted hop.
Each walk goes over `app.routes`, so a route added later is checked without editing this file.

Covered elsewhere, not repeated: CSRF on sign-in and sign-out by field and header, and the
pre-login token not working after sign-in
(test_auth.py::test_csrf_missing_or_wrong_is_refused_and_changes_nothing); brute force from one
address, per account and per address
(test_auth.py::test_failed_logins_are_throttled_per_account_then_per_address, and
tests/people/test_sign_in_throttling.py: the attacker delayed, the user in from elsewhere); a
set-password, task or survey link's GET changing nothing in their own stories
(test_task_acks.py::test_the_owner_marks_a_task_seen_then_done_from_his_links).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from ipaddress import ip_network

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route

from asgi import create_app
from console.agency.admin import password_link_token
from console.base.config import Settings
from console.base.db import Database
from console.calendar import calendar_feed
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls, leads
from console.leads.surveys import SurveyLinks
from console.tasks import tasks
from console.tasks.task_links import TaskLinks
from models import Base, LoginFailure, Survey
from routes.middleware import CSRF_EXEMPT_PREFIXES
from tests.conftest import SECRET
from tests.factories import PASSWORD, csrf_token, make_business, make_user, sign_in

NOW = datetime.now(UTC)
PARAM = re.compile(r"\{(\w+)\}")
# Posts that prove themselves by signature, key, bearer token or a signed link instead.
EXEMPT = {
    "/intake/twilio/sms",
    "/intake/twilio/voice",
    "/intake/twilio/status",
    "/intake/whatsapp",
    "/intake/email",
    "/intake/{business_slug}/form",
    "/api/v1/leads",
    "/api/v1/tasks/{task_id}/done",
    "/api/v1/webhooks",
    "/ack/{token}",
    "/ack/on-call/{token}",  # an on-call page's acknowledgement: the link is the proof
    "/ack/call/{token}",  # an owner marking a call's message seen: the link is the proof
    "/survey/{token}",
    "/meeting/{token}",  # a contact's signed link to cancel his meeting, like the survey's
    "/sip/route",  # the SIP server's, signed with the shared secret (HMAC over time and body)
    "/sip/events",
    "/sip/voicemail",  # the SIP server's too, signed the same way
}
VOLATILE = frozenset({"last_seen_at", "last_used_at"})


def routes_with(app: Starlette, method: str) -> list[str]:
    return [
        route.path
        for route in app.routes
        if isinstance(route, Route) and method in (route.methods or set())
    ]


async def fingerprint(
    db: Database, leave_out: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    found = {}
    async with db.transaction(write=False) as session:
        for table in Base.metadata.sorted_tables:
            if table.name in leave_out:
                continue
            columns = [c for c in table.c if c.name not in VOLATILE]
            rows = (await session.execute(select(*columns))).all()
            found[table.name] = sorted(repr(tuple(row)) for row in rows)
    return found


def client_from(app: Starlette, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_every_state_changing_route_refuses_a_missing_or_wrong_csrf_token(
    app: Starlette, client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
    anonymous = client_from(app, "127.0.0.1")
    await csrf_token(anonymous)  # holds a pre-login token, and sends none of it below
    await sign_in(client, admin.email)
    real = await csrf_token(client, "/agency")
    before = await fingerprint(db)
    posts = routes_with(app, "POST")
    assert {p for p in posts if p.startswith(CSRF_EXEMPT_PREFIXES)} == EXEMPT
    checked = 0
    for path in posts:
        if path in EXEMPT:
            continue
        url = PARAM.sub(lambda m: str(uuid.uuid4()), path)
        for who in (client, anonymous):
            for request in (
                {"data": {"field": "x"}},
                {"data": {"csrf_token": "forged"}},
                {"data": {"csrf_token": real[:-1] + ("A" if real[-1] != "A" else "B")}},
                {"headers": {"X-CSRF-Token": "forged"}},
                {"json": {"csrf_token": real}},  # not a form: the field is not read from JSON
                {"content": f"csrf_token={real}", "headers": {"Content-Type": "text/plain"}},
            ):
                answer = await who.post(url, **request)
                assert answer.status_code == 403, (path, request, answer.status_code)
                checked += 1
    assert checked > 400
    assert await fingerprint(db) == before
    await anonymous.aclose()


async def world_for_gets(db: Database) -> tuple[dict[str, str], list[str]]:
    """Real objects for every path parameter, and the people who will look at them."""
    async with db.transaction() as session:
        business = await make_business(session, always_open=True)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
        admin = await make_user(session, "admin")
        new = NewLead(business_id=str(business.id), phone="052-7654321", subject="s")
        lead = await arrivals.create_lead(session, secretary, new, now=NOW)
        await leads.claim_lead(session, secretary, lead.id, now=NOW)
        call = await calls.start_interaction(
            session, secretary, lead.id, kind="inbound_call", now=NOW
        )
        handoff = tasks.HandOff(assignee_id=str(owner.id), title="t", due="2031-01-05T12:00")
        task = await tasks.hand_off(session, secretary, lead.id, handoff, now=NOW)
        survey = Survey(business_id=business.id, lead_id=lead.id, contact_id=lead.contact_id)
        session.add(survey)
        await session.flush()
        tokens = {
            "/invite/{token}": password_link_token(SECRET, secretary),
            "/ack/{token}": TaskLinks(SECRET, None).token(task.id, owner.id, "done", now=NOW),
            "/survey/{token}": SurveyLinks(SECRET, None).token(survey.id, now=NOW),
            "/calendar/{token}.ics": calendar_feed.feed_token(SECRET, business),
        }
        ids = {
            "lead_id": str(lead.id),
            "contact_id": str(lead.contact_id),
            "call_id": str(call.id),
            "interaction_id": str(call.id),
            "task_id": str(task.id),
            "business_id": str(business.id),
            "user_id": str(secretary.id),
            "business_slug": business.slug,
            **tokens,
        }
    return ids, [secretary.email, owner.email, admin.email]


def fill(path: str, ids: dict[str, str]) -> str:
    """The path with real objects; a signed link's token; or an id of nothing."""
    other = ids.get(path) or str(uuid.uuid4())
    return PARAM.sub(lambda found: ids.get(found.group(1), other), path)


async def test_no_get_changes_anything(app: Starlette, db: Database) -> None:
    """Every GET route, for each role, with real objects and valid signed links: the only rows
    written are the audit's record of who opened a lead (on purpose)."""
    ids, emails = await world_for_gets(db)
    gets = routes_with(app, "GET")
    post_only = [p for p in routes_with(app, "POST") if p not in gets]
    viewers = []
    for email in emails:
        viewer = client_from(app, "127.0.0.1")
        await sign_in(viewer, email)
        viewers.append(viewer)
    before = await fingerprint(db, leave_out=frozenset({"audit_events"}))
    shown = 0
    for path in gets:
        url = fill(path, ids)
        for viewer in viewers:
            answer = await viewer.get(url)
            assert answer.status_code < 500, (url, answer.status_code)
            shown += answer.status_code == 200
    assert shown > 50, shown  # real pages, not a walk of refusals
    for path in post_only:
        url = PARAM.sub(lambda m: ids.get(m.group(1), str(uuid.uuid4())), path)
        for viewer in viewers:
            for headers in ({}, {"X-HTTP-Method-Override": "POST"}):
                answer = await viewer.get(url, headers=headers)
                # 405; or 404 where a GET route's pattern takes the word (/contacts/{id})
                assert answer.status_code in (404, 405), (url, answer.status_code)
    assert await fingerprint(db, leave_out=frozenset({"audit_events"})) == before
    async with db.transaction(write=False) as session:
        from models import AuditEvent

        actions = set(await session.scalars(select(AuditEvent.action)))
    assert actions <= {"lead.viewed", "sign_in"}, actions
    for viewer in viewers:
        await viewer.aclose()


@pytest.fixture
async def behind_proxy(db: Database) -> AsyncIterator[Starlette]:
    """The console behind a proxy on 10.0.0.0/8, with small limits to reach quickly."""
    settings = Settings(
        database_url=db.url,
        secret_key=SECRET,
        trusted_proxies=(ip_network("10.0.0.0/8"),),
        login_attempts_per_address=8,
        intake_rate_per_key=100,
        intake_rate_per_address=3,
    )
    application = create_app(settings, db=db, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


async def failures_by_address(db: Database) -> dict[str, int]:
    async with db.transaction(write=False) as session:
        found: dict[str, int] = {}
        for address in await session.scalars(select(LoginFailure.address)):
            found[address] = found.get(address, 0) + 1
        return found


async def test_guesses_at_one_account_from_many_addresses_never_keep_its_owner_out(
    behind_proxy: Starlette, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    proxy = client_from(behind_proxy, "10.0.0.2")
    for n in range(5):
        proxy.headers["X-Forwarded-For"] = f"198.51.100.{n + 1}"
        assert (await sign_in(proxy, user.email, "wrong-password")).status_code == 401
    # Five guessing addresses hold back only themselves: a fresh one with the password is in.
    proxy.headers["X-Forwarded-For"] = "198.51.100.77"
    assert (await sign_in(proxy, user.email, PASSWORD)).status_code == 303
    assert await failures_by_address(db) == {f"198.51.100.{n}": 1 for n in range(1, 6)}
    await proxy.aclose()


async def test_forwarded_for_from_an_untrusted_hop_is_not_believed(
    behind_proxy: Starlette, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="levi")
    # A client straight on the internet, writing its own X-Forwarded-For to look like many.
    direct = client_from(behind_proxy, "203.0.113.9")
    for n in range(8):
        direct.headers["X-Forwarded-For"] = f"10.0.0.{n + 3}, 192.0.2.{n + 1}"
        assert (await sign_in(direct, f"guess{n}@example.test", "x-password")).status_code == 401
    direct.headers["X-Forwarded-For"] = "192.0.2.200"
    assert (await sign_in(direct, "guess-more@example.test", "x-password")).status_code == 429
    # Through the proxy, the address the proxy saw counts, not what the client wrote before it.
    proxy = client_from(behind_proxy, "10.0.0.2")
    proxy.headers["X-Forwarded-For"] = "127.0.0.1, 198.51.100.9"
    assert (await sign_in(proxy, "someone@example.test", "x-password")).status_code == 401
    # A hop that is no address at all stops the walk at the proxy.
    proxy.headers["X-Forwarded-For"] = "198.51.100.10, not-an-address"
    assert (await sign_in(proxy, "someone@example.test", "x-password")).status_code == 401
    assert await failures_by_address(db) == {"203.0.113.9": 8, "198.51.100.9": 1, "10.0.0.2": 1}

    # The web form's per-address limit is not dodged by a forged header either.
    headers = {"X-Intake-Key": business.intake_key}
    answers = []
    for n in range(4):
        headers["X-Forwarded-For"] = f"192.0.2.{n + 50}"
        form = {"phone": "054-2345678", "external_id": f"f{n}"}
        answer = await direct.post("/intake/levi/form", json=form, headers=headers)
        answers.append(answer.status_code)
    assert answers[-1] == 429 and all(code in (200, 201) for code in answers[:-1]), answers
    await direct.aclose()
    await proxy.aclose()


async def test_a_form_s_next_address_never_leads_off_site(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        new = NewLead(business_id=str(business.id), phone="052-7654321")
        lead = await arrivals.create_lead(session, secretary, new, now=NOW)
        handoff = tasks.HandOff(assignee_id=str(secretary.id), title="t", due="2031-01-05T12:00")
        task = await tasks.hand_off(session, secretary, lead.id, handoff, now=NOW)
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/tasks")
    for target in ("//evil.example/x", "/\\evil.example", "https://evil.example"):
        answer = await client.post(
            f"/tasks/{task.id}/status",
            data={"csrf_token": token, "status": "open", "next": target},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/tasks", target
