"""The JSON API v1 through HTTP: tokens, bearer auth, the tenancy rule, and its OpenAPI document
held to the behaviour by schemathesis."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select, update
from starlette.routing import Route

from asgi import create_app
from console import cli
from console.base.config import Settings
from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls
from console.people import api_tokens
from console.tasks import tasks
from models import ApiToken, Contact, Interaction, Lead, Task, User
from routes import routes
from tests.conftest import SECRET
from tests.factories import Agency, counting, csrf_token, make_agency, sign_in

HTMX = {"HX-Request": "true"}


@pytest.fixture
def settings(db: Database) -> Settings:
    """No rate limit here (schemathesis makes many calls); its own test sets one."""
    return Settings(database_url=db.url, secret_key=SECRET, api_rate_per_token=0)


@dataclass
class AgencyAtWork(Agency):
    """The agency with, in each business, a lead, a note and a task for the owner."""

    lead_a: Lead
    note_a: Interaction
    task_a: Task
    lead_b: Lead
    note_b: Interaction
    task_b: Task


def tomorrow() -> str:
    return (datetime.now(ZoneInfo("Asia/Jerusalem")) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")


async def agency_at_work(db: Database) -> AgencyAtWork:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        agency = await make_agency(session)
        a, b, secretary = agency.a, agency.b, agency.secretary
        made = {}
        for business, owner, phone in (
            (a, agency.owner_a, "054-2345678"),
            (b, agency.owner_b, "052-3456789"),
        ):
            lead = await arrivals.create_lead(
                session,
                secretary,
                NewLead(business_id=str(business.id), phone=phone, name="דנה"),
                now=now,
            )
            note = await calls.add_note(session, secretary, lead.id, text="called", now=now)
            task = await tasks.hand_off(
                session,
                secretary,
                lead.id,
                tasks.HandOff(assignee_id=str(owner.id), title="Call her back", due=tomorrow()),
                now=now,
            )
            made[business.id] = (lead, note, task)
    people = (a, b, secretary, agency.owner_a, agency.owner_b)
    return AgencyAtWork(*people, *made[a.id], *made[b.id])


async def token_for(db: Database, user: User, name: str = "integration") -> str:
    async with db.transaction() as session:
        made = await api_tokens.create_token_for_email(
            session, user.email, name, now=datetime.now(UTC)
        )
    return made.secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_an_owner_works_through_the_api_and_sees_only_his_business(
    client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_at_work(db)
    secret = await token_for(db, agency.owner_a)
    auth = bearer(secret)

    # No token, a wrong one: 401 in JSON, with the challenge.
    for headers in ({}, {"Authorization": "Basic abc"}, bearer("mzk_not-a-token")):
        refused = await client.get("/api/v1/leads", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "error" in refused.json() and "set-cookie" not in refused.headers
    hebrew = await client.get("/api/v1/leads", headers={"Accept-Language": "he-IL,he;q=0.9"})
    assert "אסימון" in hebrew.json()["error"]  # English for machines, unless asked otherwise

    # Create a lead in his business; the same Idempotency-Key again makes nothing new.
    body = {"business_id": str(agency.a.id), "name": "Yossi", "phone": "+972 54-765-4321"}
    created = await client.post("/api/v1/leads", json=body, headers=auth)
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["contact"]["phone"] == "+972547654321" and lead["stage"] == "new"
    keyed = {**auth, "Idempotency-Key": "order-17"}
    first = await client.post("/api/v1/leads", json={**body, "channel": "web"}, headers=keyed)
    again = await client.post("/api/v1/leads", json={**body, "channel": "web"}, headers=keyed)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    # The answer to a creation (made from the rows written) is the lead as read afterwards.
    assert first.json() == again.json()
    shown = await client.get(f"/api/v1/leads/{lead['id']}", headers=auth)
    assert shown.json() == lead
    # ...but a business of someone else is not found, and a bad field is named.
    elsewhere = await client.post(
        "/api/v1/leads", json={**body, "business_id": str(agency.b.id)}, headers=auth
    )
    assert elsewhere.status_code == 404
    for wrong, field in (
        ({**body, "phone": "050-1234567"}, "phone"),
        ({**body, "channel": "pigeon"}, "channel"),
        ({**body, "colour": "red"}, "colour"),
        ({"name": "no business"}, "business_id"),
        ([body], "body"),
    ):
        answer = await client.post("/api/v1/leads", json=wrong, headers=auth)
        assert (answer.status_code, answer.json()["field"]) == (422, field), answer.text
    broken = await client.post(
        "/api/v1/leads", content=b'{"name": ', headers={**auth, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["field"] == "body"
    form = await client.post("/api/v1/leads", data={"name": "x"}, headers=auth)
    assert form.status_code == 415

    # Lists hold his business only, newest first, page by page.
    listed = (await client.get("/api/v1/leads", headers=auth)).json()
    ids = [item["id"] for item in listed["items"]]
    assert set(ids) == {lead["id"], first.json()["id"], str(agency.lead_a.id)}
    assert {item["business_id"] for item in listed["items"]} == {str(agency.a.id)}
    pages, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/leads", params=params, headers=auth)).json()
        pages += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == ids
    web = await client.get("/api/v1/leads", params={"channel": "web"}, headers=auth)
    assert [item["id"] for item in web.json()["items"]] == [first.json()["id"]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await client.get("/api/v1/leads", params={"since": later}, headers=auth)).json()[
        "items"
    ] == []
    others = await client.get("/api/v1/leads", params={"business": str(agency.b.id)}, headers=auth)
    assert others.json()["items"] == []
    bad_filter = await client.get("/api/v1/leads", params={"stage": "maybe"}, headers=auth)
    assert (bad_filter.status_code, bad_filter.json()["field"]) == (422, "stage")

    # Reading one: his are there, the other business's are not found (never forbidden).
    assert (await client.get(f"/api/v1/leads/{agency.lead_a.id}", headers=auth)).status_code == 200
    notes = await client.get(f"/api/v1/leads/{agency.lead_a.id}/interactions", headers=auth)
    assert [i["id"] for i in notes.json()["items"]] == [str(agency.note_a.id)]
    note = await client.get(f"/api/v1/interactions/{agency.note_a.id}", headers=auth)
    assert note.json()["notes"] == "called"
    contacts = (await client.get("/api/v1/contacts", headers=auth)).json()["items"]
    assert {c["business_id"] for c in contacts} == {str(agency.a.id)} and len(contacts) == 2
    assert {c["locale"] for c in contacts} == {None}  # written to in the business's language
    listed_tasks = (await client.get("/api/v1/tasks", headers=auth)).json()["items"]
    assert [t["id"] for t in listed_tasks] == [str(agency.task_a.id)]
    async with db.transaction(write=False) as session:
        contact_b = await session.scalar(select(Contact).where(Contact.business_id == agency.b.id))
    assert contact_b is not None
    for path in (
        f"/api/v1/leads/{agency.lead_b.id}",
        f"/api/v1/leads/{agency.lead_b.id}/interactions",
        f"/api/v1/interactions/{agency.note_b.id}",
        f"/api/v1/contacts/{contact_b.id}",
        f"/api/v1/tasks/{agency.task_b.id}",
        "/api/v1/leads/not-a-uuid",
    ):
        missing = await client.get(path, headers=auth)
        assert missing.status_code == 404, path
        assert missing.json()["error"]
    assert (
        await client.post(f"/api/v1/tasks/{agency.task_b.id}/done", headers=auth)
    ).status_code == 404

    # Marking his task done, twice: done once.
    done = await client.post(f"/api/v1/tasks/{agency.task_a.id}/done", headers=auth)
    assert done.status_code == 200 and done.json()["status"] == "done"
    assert (await client.post(f"/api/v1/tasks/{agency.task_a.id}/done", headers=auth)).json()[
        "completed_at"
    ] == done.json()["completed_at"]

    # A list costs the same statements for 3 leads or 13 (no query per row).
    with counting(db) as few:
        await client.get("/api/v1/leads", headers=auth)
    for n in range(10):
        body = {"business_id": str(agency.a.id), "phone": f"+97254{3000000 + n}"}
        assert (await client.post("/api/v1/leads", json=body, headers=auth)).status_code == 201
    with counting(db) as many:
        page = await client.get("/api/v1/leads", headers=auth)
    assert len(page.json()["items"]) == 13
    assert len(few) == len(many) <= 2, many

    # The token's use is recorded; a revoked token and a deactivated user's token are refused.
    async with db.transaction() as session:
        token = await session.scalar(select(ApiToken).where(ApiToken.user_id == agency.owner_a.id))
        assert token is not None and token.last_used_at is not None
        await api_tokens.revoke_token(session, agency.owner_a, token.id, now=datetime.now(UTC))
    assert (await client.get("/api/v1/leads", headers=auth)).status_code == 401
    other = bearer(await token_for(db, agency.owner_b))
    assert (await client.get("/api/v1/leads", headers=other)).status_code == 200
    async with db.transaction() as session:
        await session.execute(update(User).where(User.id == agency.owner_b.id).values(active=False))
    assert (await client.get("/api/v1/leads", headers=other)).status_code == 401


async def test_leads_created_at_once_with_many_tokens_are_answered_each_on_its_own(
    client: httpx.AsyncClient, db: Database
) -> None:
    """The token is checked with the lead's group, not read before: a group that mixes a live
    owner's token, the secretary's, a revoked one and a deactivated user's answers each request
    as it alone deserves, and a creation costs the group's statements and no read of its own."""
    agency = await agency_at_work(db)
    avi, michal = await token_for(db, agency.owner_a), await token_for(db, agency.secretary)
    revoked, dana = await token_for(db, agency.owner_a, "old"), await token_for(db, agency.owner_b)
    async with db.transaction() as session:
        old = await session.scalar(select(ApiToken).where(ApiToken.name == "old"))
        assert old is not None
        await api_tokens.revoke_token(session, agency.owner_a, old.id, now=datetime.now(UTC))
        await session.execute(update(User).where(User.id == agency.owner_b.id).values(active=False))

    def post(secret: str, business: User | Any, n: int, key: str | None = None) -> Any:
        body = {"business_id": str(business.id), "phone": f"+97254{4000000 + n}"}
        headers = {**bearer(secret), **({"Idempotency-Key": key} if key else {})}
        return client.post("/api/v1/leads", json=body, headers=headers)

    a, b = agency.a, agency.b
    asked = [
        (post(avi, a, 1), 201),
        (post(avi, b, 2), 404),  # not his business
        (post(michal, a, 3), 201),
        (post(michal, b, 4), 201),  # she serves both
        (post(revoked, a, 5), 401),
        (post(dana, b, 6), 401),  # her user is deactivated
        (post(michal, b, 7, key="k-1"), {201, 200}),  # the same key twice: one lead
        (post(michal, b, 7, key="k-1"), {201, 200}),
        (post(avi, a, 8, key="k-1"), 201),  # another user's same key is another lead
    ]
    answers = await asyncio.gather(*(request for request, _ in asked))
    for n, (answer, (_, wanted)) in enumerate(zip(answers, asked, strict=True)):
        assert answer.status_code in (wanted if isinstance(wanted, set) else {wanted}), (
            n,
            answer.text,
        )
        if answer.status_code == 401:
            assert answer.headers["www-authenticate"].startswith("Bearer")
    keyed = [answers[6], answers[7]]
    assert sorted(a.status_code for a in keyed) == [200, 201]
    assert keyed[0].json()["id"] == keyed[1].json()["id"] != answers[8].json()["id"]
    async with db.transaction(write=False) as session:
        made = set((await session.scalars(select(Lead.id))).all())
    created = {answer.json()["id"] for answer in answers if answer.status_code in (200, 201)}
    assert {uuid.UUID(i) for i in created} <= made and len(created) == 5

    # One creation reads the token once, inside its group's transaction.
    with counting(db) as statements:
        assert (await post(michal, a, 9)).status_code == 201
    assert sum("api_tokens" in statement for statement in statements) == 1, statements
    assert len(statements) <= 10, statements


async def test_tokens_are_made_shown_once_and_revoked_in_the_settings(
    client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_at_work(db)
    foreign = await token_for(db, agency.owner_b)
    await sign_in(client, agency.owner_a.email)
    page = await client.get("/settings/tokens")
    assert page.status_code == 200 and 'href="/settings/tokens"' in page.text
    token = await csrf_token(client, "/settings/tokens")
    forged = await client.post("/settings/tokens", data={"name": "zapier"})
    assert forged.status_code == 403

    made = await client.post(
        "/settings/tokens", data={"name": "zapier", "csrf_token": token}, headers=HTMX
    )
    assert made.status_code == 200 and "<html" not in made.text
    assert made.headers["cache-control"] == "no-store"
    secret = re.search(r"mzk_[A-Za-z0-9_-]{40,}", made.text)
    assert secret is not None
    shown = await client.get("/settings/tokens")
    assert secret.group(0) not in shown.text and secret.group(0)[:12] in shown.text
    assert "zapier" in shown.text
    listed = await client.get("/api/v1/leads", headers=bearer(secret.group(0)))
    assert listed.status_code == 200

    async with db.transaction(write=False) as session:
        ids = {
            t.user_id: t.id
            for t in (await session.scalars(select(ApiToken))).all()  # two tokens: A's and B's
        }
    someone_elses = await client.post(
        f"/settings/tokens/{ids[agency.owner_b.id]}/revoke", data={"csrf_token": token}
    )
    assert someone_elses.status_code == 404
    assert (await client.get("/api/v1/leads", headers=bearer(foreign))).status_code == 200
    revoked = await client.post(
        f"/settings/tokens/{ids[agency.owner_a.id]}/revoke", data={"csrf_token": token}
    )
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings/tokens"
    assert (await client.get("/api/v1/leads", headers=bearer(secret.group(0)))).status_code == 401
    unnamed = await client.post("/settings/tokens", data={"name": " ", "csrf_token": token})
    assert unnamed.status_code == 422


async def test_too_many_calls_with_one_token_are_429(db: Database) -> None:
    agency = await agency_at_work(db)
    secret = await token_for(db, agency.owner_a)
    settings = Settings(database_url=db.url, secret_key=SECRET, api_rate_per_token=3)
    app = create_app(settings, db=db, run_jobs=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        answers = [await client.get("/api/v1/tasks", headers=bearer(secret)) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[-1].headers["retry-after"]) >= 1 and answers[-1].json()["error"]


def test_create_token_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'agency.db'}")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    admin = ["--email", "Dana@Example.test", "--password", "long-enough", "--role", "admin"]
    assert cli.main(["migrate"]) == 0 and cli.main(["create-user", *admin]) == 0
    capsys.readouterr()

    assert cli.main(["create-token", "--email", "dana@example.test", "--name", "zapier"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"mzk_[A-Za-z0-9_-]{43}", lines[0])
    assert cli.main(["create-token", "--email", "nobody@example.test"]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err.startswith("mazkira: ")
    assert "nobody@example.test" in printed.err


# --- the OpenAPI document against the behaviour -------------------------------------------------

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Per operation and kind of data: enough to meet each answer, quick to run. A longer, random
# run: API_FUZZ_EXAMPLES=500 pytest tests/api/test_api.py -k schemathesis
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))


def draw(strategy: Any, examples: int) -> list[Case[Any]]:
    """Cases from a strategy, drawn up front (the app runs on the test's own event loop)."""
    found: list[Case[Any]] = []

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize="API_FUZZ_EXAMPLES" not in os.environ,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(strategy)
    def collect(case: Case[Any]) -> None:
        found.append(case)

    collect()
    return found


def in_business(business_id: str) -> Any:
    """A new lead for a business the token may see, reachable by phone: it is created."""

    def place(case: Case[Any]) -> Case[Any]:
        if isinstance(case.body, dict) and "business_id" in case.body:
            case.body.update(business_id=business_id, phone="+972542345678", email="")
        return case

    return place


async def send(client: httpx.AsyncClient, case: Case[Any], secret: str) -> httpx.Response:
    """The case as schemathesis would send it, through the test's own client: with the token,
    unless the case is about a missing or broken one."""
    negated = case.operation.schema.is_security_param_negated(case)
    headers = None if negated else bearer(secret)
    sent = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    content = None
    if "json" in sent:
        content = json.dumps(sent["json"]).encode()  # as requests sends it: ASCII-escaped
    elif "data" in sent:
        content = sent["data"] if isinstance(sent["data"], bytes) else str(sent["data"]).encode()
    return await client.request(
        sent["method"],
        sent["url"],
        params=sent.get("params"),
        headers=sent.get("headers"),
        content=content,
    )


@pytest.fixture
async def tolerant_client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """A client that gets the app's 500 as a response, so schemathesis can report it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def test_schemathesis_finds_the_api_true_to_its_document(
    tolerant_client: httpx.AsyncClient, db: Database
) -> None:
    agency = await agency_at_work(db)
    secret = await token_for(db, agency.owner_a)
    document = (await tolerant_client.get("/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    real_ids = {
        "lead_id": str(agency.lead_a.id),
        "interaction_id": str(agency.note_a.id),
        "task_id": str(agency.task_a.id),
    }
    async with db.transaction(write=False) as session:
        real_ids["contact_id"] = str(
            await session.scalar(select(Contact.id).where(Contact.business_id == agency.a.id))
        )

    cases: list[Case[Any]] = []
    operations = [op.ok() for op in schema.get_all_operations() if isinstance(op, Ok)]
    assert len(operations) == 13
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            cases += draw(operation.as_strategy(generation_mode=mode), EXAMPLES)
        # Positive data about objects that exist, so the 200s are checked too.
        mine = {name: value for name, value in real_ids.items() if f"{{{name}}}" in operation.path}
        existing = operation.as_strategy(path_parameters=mine).map(in_business(str(agency.a.id)))
        cases += draw(existing, EXAMPLES)

    failures, statuses = [], set()
    for case in cases:
        response = await send(tolerant_client, case, secret)
        statuses.add((case.operation.label, response.status_code))
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as failure:  # schemathesis's FailureGroup, with the curl to replay it
            failures.append(str(failure))
    assert failures == [], f"{len(failures)} failures; the first:\n" + "\n".join(failures[:3])
    for label, status in (
        ("GET /api/v1/leads", 200),
        ("GET /api/v1/leads", 422),
        ("POST /api/v1/leads", 201),
        ("POST /api/v1/leads", 422),
        ("GET /api/v1/leads/{lead_id}", 200),
        ("GET /api/v1/leads/{lead_id}", 404),
        ("GET /api/v1/interactions/{interaction_id}", 200),
        ("GET /api/v1/contacts/{contact_id}", 200),
        ("POST /api/v1/tasks/{task_id}/done", 200),
    ):
        assert (label, status) in statuses, (label, status)


async def test_the_document_lists_every_api_route(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    served = {
        (method, route.path)
        for route in routes
        if isinstance(route, Route)
        and route.path.startswith("/api/v1/")
        and route.path != "/api/v1/openapi.json"
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert documented == served
