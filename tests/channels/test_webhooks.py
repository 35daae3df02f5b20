"""Outbound webhooks, end to end: an admin subscribes an endpoint (the API, and the agency's
screen with its form refused in place), the lead the API creates reaches a local receiver that
verifies the Standard Webhooks signature with the specification's own library; a 500, a
redirect and a time-out are retried on a moving clock without holding up the request that
made the event; an endpoint that keeps failing is paused and its admin told; a delivery is
replayed; private addresses are refused unless WEBHOOK_ALLOW_PRIVATE."""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from redis.asyncio import Redis
from sqlalchemy import select
from standardwebhooks import Webhook
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid
from console.channels import webhooks
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.people import api_tokens
from console.people.audit import Actor
from models import Notification, User, WebhookDelivery, WebhookEndpoint
from tests.browser import PHONE, REFUSED_IN_PLACE, chromium, need_chromium, signed_in_page
from tests.conftest import SECRET
from tests.factories import PASSWORD, MovableClock, counting, make_agency, make_user, sign_in
from tests.fakes import FakeHttpServer
from tests.served import served
from workers.settings import PERIODIC, worker_settings
from workers.webhooks import deliver_webhooks

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Receiver(FakeHttpServer):
    """A tool's webhook URL: verifies each request's signature, then answers as planned (a
    status, 302 as a redirect elsewhere)."""

    def __init__(self) -> None:
        super().__init__([Route("/hook", self.hook, methods=["POST"])])
        self.secret = ""
        self.verified: list[dict[str, Any]] = []
        self.plan: deque[int] = deque()

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    async def hook(self, request: Request) -> Response:
        recorded = await self.record(request)
        self.verified.append(Webhook(self.secret).verify(recorded.body, recorded.headers))
        status = self.plan.popleft() if self.plan else 200
        if status == 302:
            return Response(status_code=302, headers={"location": f"{self.base_url}/moved"})
        return JSONResponse({"received": status == 200}, status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as server:
        yield server


async def _token(db: Database, user: User) -> dict[str, str]:
    async with db.transaction() as session:
        made = await api_tokens.create_token_for_email(
            session, user.email, "zapier", now=datetime.now(UTC)
        )
    return {"Authorization": f"Bearer {made.secret}"}


async def _run(db: Database, http: httpx.AsyncClient, at: datetime) -> webhooks.SendReport:
    """What `deliver_webhooks` does, at a moment of the test's choosing."""
    async with db.transaction() as session:
        await webhooks.collect_deliveries(session, now=at)
    return await webhooks.send_due_deliveries(db, http, now=at, allow_private=True)


async def test_an_endpoint_gets_signed_events_retried_paused_and_replayed(
    db: Database, receiver: Receiver
) -> None:
    start = datetime.now(UTC).replace(microsecond=0)
    clock = MovableClock(start)
    async with db.transaction() as session:
        agency = await make_agency(session)
        admin = await make_user(session, "admin", name="רונית")
    settings = Settings(database_url=db.url, secret_key=SECRET, webhook_allow_private=True)
    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    owner, as_admin = await _token(db, agency.owner_a), await _token(db, admin)
    # the job's client, with a short read time-out for the receiver that hangs
    hooks = httpx.AsyncClient(timeout=httpx.Timeout(0.5, connect=2.0))
    async with app.router.lifespan_context(app), hooks:
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        # Only an admin's token subscribes; a wrong event is 422 naming the field.
        body = {"url": receiver.url, "events": ["lead.created", "task.done"]}
        assert (await api.post("/api/v1/webhooks", json=body, headers=owner)).status_code == 404
        wrong = await api.post(
            "/api/v1/webhooks", json={**body, "events": ["lead.eaten"]}, headers=as_admin
        )
        assert (wrong.status_code, wrong.json()["field"]) == (422, "events")
        made = await api.post(
            "/api/v1/webhooks",
            json={**body, "business_id": str(agency.a.id)},
            headers=as_admin,
        )
        assert made.status_code == 201, made.text
        receiver.secret = made.json()["secret"]
        assert receiver.secret.startswith("whsec_")
        endpoint_id = made.json()["id"]

        # A lead of A is created while the receiver hangs: the request is not held up.
        receiver.delay = 5.0
        lead = await api.post(
            "/api/v1/leads",
            json={"business_id": str(agency.a.id), "name": "יוסי", "phone": "054-7654321"},
            headers=owner,
        )
        assert lead.status_code == 201, lead.text
        lead_id = lead.json()["id"]
        # B's lead is not this endpoint's business
        other = {"business_id": str(agency.b.id), "name": "דנה", "phone": "054-1112223"}
        assert (await api.post("/api/v1/leads", json=other, headers=owner)).status_code in (
            201,
            404,
        )

        # First attempt times out, then 500, then a redirect (not followed), then delivered.
        first = await _run(db, hooks, start)
        assert (first.retried, first.sent) == (1, 0)
        receiver.delay = 0.0
        receiver.plan.extend([500, 302])
        assert (await _run(db, hooks, start + timedelta(seconds=29))).retried == 0  # not due
        assert (await _run(db, hooks, start + timedelta(seconds=31))).retried == 1  # 500
        later = start + timedelta(seconds=31) + timedelta(minutes=2)
        assert (await _run(db, hooks, later)).retried == 1  # 302
        done = await _run(db, hooks, later + timedelta(minutes=10))
        assert done.sent == 1
        sent = receiver.requests
        assert len(sent) == 4 and len({r.headers["webhook-id"] for r in sent}) == 1
        assert all(payload["type"] == "lead.created" for payload in receiver.verified)
        assert receiver.verified[-1]["data"]["lead_id"] == lead_id
        assert receiver.verified[-1]["data"]["business_id"] == str(agency.a.id)
        summary = receiver.verified[-1]["data"]["lead"]
        assert (summary["stage"], summary["contact"]["name"]) == ("new", "יוסי")
        assert summary["contact"]["phone"] == "+972547654321"
        with pytest.raises(Exception, match="signature"):
            Webhook(webhooks.new_secret()).verify(sent[-1].body, sent[-1].headers)

        # The API lists the endpoint with the delivery and every answer logged on it.
        listed = (await api.get("/api/v1/webhooks", headers=as_admin)).json()["items"]
        assert [e["id"] for e in listed] == [endpoint_id] and "secret" not in listed[0]
        delivery = listed[0]["deliveries"][0]
        assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
            "sent",
            4,
            200,
        )
        assert '"received":true' in delivery["response_body"]
        assert (await api.get("/api/v1/webhooks", headers=owner)).status_code == 404

        # The admin's screen: a private address refused in place, as typed (this app allows
        # private ones, so a scheme that is no web address stands for it), then one added.
        browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        await sign_in(browser, admin.email)
        with counting(db) as few:  # one endpoint, one delivery
            page = await browser.get("/agency/webhooks")
        assert receiver.url in page.text and "HTTP 500" not in page.text  # the latest answer
        token = CSRF.search(page.text)
        assert token
        htmx = {"HX-Request": "true", "X-CSRF-Token": token.group(1)}
        typed = {"url": "ftp://example.com/hook", "events": ["task.done"], "business_id": ""}
        refused = await browser.post("/agency/webhooks", data=typed, headers=htmx)
        assert refused.status_code == 422
        assert refused.text.lstrip().startswith('<form id="new-webhook"')
        assert 'value="ftp://example.com/hook"' in refused.text
        assert 'id="new-webhook-url-error"' in refused.text and "checked" in refused.text
        added = await browser.post(
            "/agency/webhooks",
            data={**typed, "url": receiver.url + "?all=1", "events": ["lead.closed"]},
            headers=htmx,
        )
        assert added.status_code == 201 and "whsec_" in added.text
        assert 'id="webhook-endpoints" class="stack" hx-swap-oob="true"' in added.text

        # Replay: the same delivery again, with the same webhook-id.
        async with db.transaction(write=False) as session:
            delivered = await session.scalar(select(WebhookDelivery.id))
        assert (
            await browser.post(f"/agency/webhooks/deliveries/{delivered}/replay", headers=htmx)
        ).status_code == 204
        again = later + timedelta(minutes=11)
        assert (await _run(db, hooks, again)).sent == 1
        assert receiver.requests[-1].headers["webhook-id"] == sent[0].headers["webhook-id"]

        # An endpoint that keeps failing is paused, and its admin is told by e-mail.
        receiver.plan.extend([500] * 20)
        at = again
        for n in range(4):
            clock.moment = at = at + timedelta(hours=4)
            created = await api.post(
                "/api/v1/leads",
                json={
                    "business_id": str(agency.a.id),
                    "name": f"לקוח {n}",
                    "phone": f"054-765432{n}",
                },
                headers=owner,
            )
            assert created.status_code == 201, created.text
            await _run(db, hooks, at)
        async with db.transaction(write=False) as session:
            endpoint = await session.get_one(WebhookEndpoint, uuid.UUID(endpoint_id))
            told = list(await session.scalars(select(Notification)))
        assert endpoint.paused_at is not None and endpoint.failures >= webhooks.PAUSE_AFTER
        assert [(n.recipient, n.channel) for n in told] == [(admin.email, "email")]
        assert receiver.url in told[0].subject
        quiet = len(receiver.requests)
        assert (await _run(db, hooks, at + timedelta(hours=4))).sent == 0
        assert len(receiver.requests) == quiet  # nothing goes to a paused endpoint
        await sign_in(browser, admin.email)  # hours went by: her session ended meanwhile
        with counting(db) as many:  # two endpoints, many deliveries: the same statements
            page = await browser.get("/agency/webhooks")
        assert len(many) == len(few) <= 8, many
        assert f'action="/agency/webhooks/{endpoint_id}/resume"' in page.text
        token = CSRF.search(page.text)
        assert token
        htmx["X-CSRF-Token"] = token.group(1)
        receiver.plan.clear()
        resumed = await browser.post(f"/agency/webhooks/{endpoint_id}/resume", headers=htmx)
        assert resumed.status_code == 204
        assert (await _run(db, hooks, at + timedelta(hours=4))).sent >= 1
        await browser.aclose()
        await api.aclose()


async def test_private_and_loopback_addresses_are_refused_unless_allowed(db: Database) -> None:
    env = {"DATABASE_URL": "postgresql://db/mazkira", "SECRET_KEY": SECRET}
    assert not Settings.from_env(env).webhook_allow_private
    assert Settings.from_env({**env, "WEBHOOK_ALLOW_PRIVATE": "true"}).webhook_allow_private
    for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://localhost/x"):
        with pytest.raises(Invalid) as refused:
            await webhooks.checked_url(url, allow_private=False)
        assert refused.value.field == "url"
        assert await webhooks.checked_url(url, allow_private=True) == url
    with pytest.raises(Invalid):
        await webhooks.checked_url("file:///etc/passwd", allow_private=True)
    # and at send time too, should an address have been stored while private ones were allowed
    async with db.transaction() as session:
        agency = await make_agency(session)
        admin = await make_user(session, "admin")
    settings = Settings(database_url=db.url, secret_key=SECRET)
    app = create_app(settings, db=db, run_jobs=False)
    as_admin = await _token(db, admin)
    async with app.router.lifespan_context(app):
        api = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        body: dict[str, Any] = {"url": "http://127.0.0.1:9/hook", "events": ["lead.created"]}
        refused_api = await api.post("/api/v1/webhooks", json=body, headers=as_admin)
        assert (refused_api.status_code, refused_api.json()["field"]) == (422, "url")
        async with db.transaction() as session:
            actor = Actor(admin, datetime.now(UTC))
            await webhooks.create_endpoint(
                session,
                actor,
                url=body["url"],
                events=body["events"],
                business_id=None,
                allow_private=True,
            )
        owner = await _token(db, agency.owner_a)
        lead = {"business_id": str(agency.a.id), "name": "x", "phone": "054-7654321"}
        assert (await api.post("/api/v1/leads", json=lead, headers=owner)).status_code == 201
        await api.aclose()
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with db.transaction() as session:
        assert await webhooks.collect_deliveries(session, now=now) == 1
    async with httpx.AsyncClient() as http:
        report = await webhooks.send_due_deliveries(db, http, now=now, allow_private=False)
    assert report.retried == 1
    async with db.transaction(write=False) as session:
        delivery = await session.scalar(select(WebhookDelivery))
    assert delivery is not None and delivery.last_error.startswith("refused:")


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_the_admin_adds_an_endpoint_on_a_phone_in_both_languages(
    db: Database, receiver: Receiver
) -> None:
    need_chromium()
    async with db.transaction() as session:
        admin = await make_user(session, "admin", name="רונית")
    settings = Settings(database_url=db.url, secret_key=SECRET, webhook_allow_private=True)
    app = create_app(settings, db=db, run_jobs=False)
    async with app.router.lifespan_context(app), served(app) as url, chromium() as browser:
        for lang in ("he", "en"):
            page, errors = await signed_in_page(
                browser, url, admin.email, PASSWORD, lang, home="/agency"
            )
            await page.click("a[href='/agency/webhooks']")
            await page.wait_for_url(f"{url}/agency/webhooks")
            form = page.locator("#new-webhook")
            await form.locator("input[name=url]").fill("ftp://example.com/hook")
            await form.locator("input[value='lead.created']").check()
            await form.locator("button[type=submit]").click()
            await page.locator("#new-webhook-url-error").wait_for()
            assert await form.locator("input[name=url]").input_value() == "ftp://example.com/hook"
            assert await form.locator("input[value='lead.created']").is_checked()
            await form.locator("input[name=url]").fill(f"{receiver.url}?{lang}")
            await form.locator("button[type=submit]").click()
            secret = page.locator(".webhook-secret code")
            await secret.wait_for()
            assert (await secret.inner_text()).startswith("whsec_")
            await page.locator(f".webhook-url:has-text('?{lang}')").wait_for()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"]
            assert [e for e in errors if not re.search(REFUSED_IN_PLACE, e)] == []
            await page.context.close()


async def test_the_job_twice_and_the_arq_worker_deliver_each_event_once(
    db: Database, receiver: Receiver, redis: Redis, redis_url: str
) -> None:
    assert any(job.function is deliver_webhooks for job in PERIODIC)
    settings = Settings(
        database_url=db.url, secret_key=SECRET, webhook_allow_private=True, redis_url=redis_url
    )
    async with db.transaction() as session:
        agency = await make_agency(session)
        admin = await make_user(session, "admin")
        made = await webhooks.create_endpoint(
            session,
            Actor(admin, datetime.now(UTC) - timedelta(seconds=1)),
            url=receiver.url,
            events=["lead.created"],
            business_id=None,
            allow_private=True,
        )
        receiver.secret = made.secret
        for business, phone in ((agency.a, "052-7654321"), (agency.b, "054-2345678")):
            new = NewLead(business_id=str(business.id), phone=phone)
            await arrivals.create_lead(session, agency.secretary, new, now=datetime.now(UTC))
    ctx: dict[str, Any] = {"db": db, "settings": settings}
    assert (await deliver_webhooks(ctx)).sent == 2  # the agency's: both businesses
    assert (await deliver_webhooks(ctx)).sent == 0  # a second run finds nothing new
    assert {p["data"]["business_id"] for p in receiver.verified} == {
        str(agency.a.id),
        str(agency.b.id),
    }

    # the same job on an arq worker, as `mazkira worker` runs it
    async with db.transaction() as session:
        new = NewLead(business_id=str(agency.a.id), phone="053-1234567")
        await arrivals.create_lead(session, agency.secretary, new, now=datetime.now(UTC))
    config = worker_settings(settings)
    [cron_job] = [job for job in config["cron_jobs"] if job.name == "cron:deliver_webhooks"]
    assert cron_job.second == set(range(0, 60, 5))
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    await pool.enqueue_job("deliver_webhooks", _job_id="deliver-webhooks-test")

    async def startup(ctx: dict[str, Any]) -> None:  # as workers.settings.startup, with our db
        ctx["db"], ctx["settings"] = db, settings

    worker = Worker(
        functions=config["functions"],
        redis_pool=pool,
        burst=True,
        poll_delay=0,
        on_startup=startup,
        handle_signals=False,
    )
    await worker.main()
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    assert len(receiver.requests) == 3
    await worker.close()
    await pool.aclose()
