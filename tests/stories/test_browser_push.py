"""The owner's portal installed on his phone (issue 24, point 2), in a real Chromium: the
manifest is valid (Chromium's own parse reports no error); the service worker registers and
keeps his last handled calls, which the portal shows with no network; a browser subscribes to
Web Push over HTTP with keys the test made (headless Chromium cannot reach a real push
service); a hand-off is pushed by the console's own sender to a local push service that
decrypts it, and that message, handed to the service worker as a push (DevTools protocol),
becomes a notification; signing out deletes the offline copy and ends the subscription.
Hebrew, then the manifest and the settings page in English. Delivery in detail:
tests/channels/test_push.py."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from console.base.db import Database
from console.base.migrate import upgrade
from console.channels.push import installation_keys
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls
from console.people import accounts
from console.tasks import tasks
from models import Lead, PushSubscription, User
from tests.browser import PHONE, chromium, need_chromium
from tests.push_service import PushService
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-secret"
# While the phone is offline the page's live socket retries, and the service worker's own fetch
# of the page fails before it answers from its cache: both are the point of the story.
OFFLINE_NOISE = [
    r"WebSocket connection to 'ws://.*/ws' failed",
    r"ERR_INTERNET_DISCONNECTED",
    r"^\[object Event\]$",  # htmx-ext-ws logs each failed attempt's error event
]
CACHES = "caches.keys().then((names) => names.filter((n) => n.startsWith('mazkira-portal-')))"


async def seed(url: str) -> str:
    db = Database(url)
    await upgrade(db)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        business = await accounts.create_business(session, slug="cohen", name="אינסטלציה כהן")
        michal = await accounts.create_user(
            session,
            email="michal@example.test",
            password=PASSWORD,
            role="secretary",
            name="מיכל",
            businesses=["cohen"],
        )
        await accounts.create_user(
            session,
            email="avi@example.test",
            password=PASSWORD,
            role="owner",
            name="אבי",
            businesses=["cohen"],
        )
        business_id = str(business.id)
        lead = await arrivals.create_lead(
            session,
            michal,
            NewLead(business_id=business_id, phone="054-2345678", name="יעל", subject="נזילה"),
            now=now - timedelta(minutes=30),
        )
        call = await calls.start_interaction(
            session, michal, lead.id, kind="inbound_call", now=now - timedelta(minutes=27)
        )
        await calls.wrap_up(
            session,
            michal,
            call.id,
            notes="",
            summary="נזילה מתחת לכיור, טכנאי מחר",
            answers={},
            outcome="booked_meeting",
            now=now - timedelta(minutes=20),
        )
        public_key = (await installation_keys(session)).public_key
    await db.dispose()
    return public_key


async def hand_off(url: str, title: str) -> None:
    """Michal hands the lead's follow-up to Avi, as from her lead page."""
    db = Database(url)
    async with db.transaction() as session:
        michal = await session.scalar(select(User).where(User.email == "michal@example.test"))
        avi = await session.scalar(select(User).where(User.email == "avi@example.test"))
        lead_id = await session.scalar(select(Lead.id))
        assert michal and avi and lead_id
        handoff = tasks.HandOff(assignee_id=str(avi.id), title=title, due="2031-01-05T12:00")
        await tasks.hand_off(session, michal, lead_id, handoff, now=datetime.now(UTC))
    await db.dispose()


async def subscriptions(url: str) -> int:
    db = Database(url)
    async with db.transaction(write=False) as session:
        found = await session.scalar(select(func.count()).select_from(PushSubscription))
    await db.dispose()
    return int(found or 0)


async def test_the_portal_installs_works_offline_and_forgets_him_on_sign_out(
    tmp_path: Path,
) -> None:
    need_chromium()
    async with PushService() as push_service:
        server = Server(tmp_path, {"PUSH_TEST_ORIGIN": push_service.base_url})
        db_url = server.env["DATABASE_URL"].replace("sqlite://", "sqlite+aiosqlite://")
        public_key = await seed(db_url)
        server.start()
        try:
            async with chromium(expected=OFFLINE_NOISE) as browser:
                context = await browser.new_context(viewport=PHONE, is_mobile=True)  # type: ignore[attr-defined]
                page = await context.new_page()
                await page.goto(f"{server.url}/login")
                await page.fill("input[name=email]", "avi@example.test")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit].primary")
                await page.wait_for_url(f"{server.url}/portal")

                # the manifest as Chromium reads it: no error, opens the portal, standalone
                cdp = await context.new_cdp_session(page)
                manifest = await cdp.send("Page.getAppManifest", {})
                assert manifest["errors"] == [], manifest["errors"]
                assert manifest["url"] == f"{server.url}/manifest.webmanifest"
                parsed = json.loads(manifest["data"])
                assert (parsed["start_url"], parsed["display"], parsed["lang"]) == (
                    "/portal",
                    "standalone",
                    "he",
                )

                # the service worker controls the portal and has kept his last calls
                await page.wait_for_selector("body[data-offline-ready='yes']", timeout=20_000)
                script = await page.evaluate(
                    "navigator.serviceWorker.getRegistration('/portal')"
                    ".then((r) => r && r.active && r.active.scriptURL)"
                )
                assert script == f"{server.url}/sw.js"
                assert len(await page.evaluate(CACHES)) == 1

                # a browser of his subscribes, with keys this test made
                browser_keys = push_service.new_browser(public_key)
                csrf = json.loads(await page.get_attribute("body", "hx-headers") or "{}")
                answer = await page.request.post(
                    f"{server.url}/portal/push/subscriptions",
                    data=json.dumps(browser_keys.subscription()),
                    headers={
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                        "X-CSRF-Token": csrf["X-CSRF-Token"],
                    },
                )
                assert answer.status == 201

                # a hand-off: the console's own sender pushes it (VAPID, encrypted) to the push
                # service, which decrypts it; handed to the service worker as the push service
                # would, it becomes a notification on his phone
                await hand_off(db_url, "להתקשר ליעל מחר")
                for _ in range(300):  # the in-process sender runs every ten seconds
                    if push_service.delivered:
                        break
                    await asyncio.sleep(0.1)
                [delivery] = push_service.delivered
                assert delivery.message["title"].endswith("להתקשר ליעל מחר")
                await context.grant_permissions(["notifications"], origin=server.url)
                workers = await context.new_cdp_session(page)
                registrations: list[str] = []
                workers.on(
                    "ServiceWorker.workerRegistrationUpdated",
                    lambda event: registrations.extend(
                        r["registrationId"] for r in event["registrations"]
                    ),
                )
                await workers.send("ServiceWorker.enable")
                for _ in range(100):
                    if registrations:
                        break
                    await asyncio.sleep(0.05)
                await workers.send(
                    "ServiceWorker.deliverPushMessage",
                    {
                        "origin": server.url,
                        "registrationId": registrations[0],
                        "data": json.dumps(delivery.message, ensure_ascii=False),
                    },
                )
                shown: list[str] = []
                for _ in range(200):  # the worker shows it as soon as it has handled the push
                    shown = await page.evaluate(
                        "navigator.serviceWorker.ready.then((r) => r.getNotifications())"
                        ".then((all) => all.map((n) => [n.title, n.body, n.tag])[0] || [])"
                    )
                    if shown:
                        break
                    await asyncio.sleep(0.05)
                title, body, tag = shown
                assert title == delivery.message["title"] and body.startswith("שלום אבי")
                assert tag.startswith("task:") and tag.endswith(":handed")

                await page.goto(f"{server.url}/portal/notifications")
                assert "ההתראות נשלחות למכשיר אחד" in await page.inner_text("main")
                assert await page.is_checked("input[name=kinds][value=breach]")

                # no network: the portal opens from the cache with his calls
                await context.set_offline(True)
                await page.goto(f"{server.url}/portal")
                offline = await page.inner_text("body")
                assert "אין חיבור" in offline
                assert "יעל" in offline and "נזילה מתחת לכיור, טכנאי מחר" in offline
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0
                await page.screenshot(path=str(tmp_path / "portal-offline.png"), full_page=True)

                # back online, he signs out: nothing of his is left in this browser
                await context.set_offline(False)
                await page.goto(f"{server.url}/portal")
                await page.click("form[action='/logout'] button")
                await page.wait_for_url(f"{server.url}/login")
                for _ in range(200):  # app.js deletes it as the sign-in page loads
                    if not await page.evaluate(CACHES):
                        break
                    await asyncio.sleep(0.05)
                assert await page.evaluate(CACHES) == []
                assert await subscriptions(db_url) == 0

                # in English: the manifest and the settings page speak it
                await context.add_cookies(
                    [{"name": "mazkira_lang", "value": "en", "url": server.url}]
                )
                english = await page.request.get(f"{server.url}/manifest.webmanifest")
                assert (await english.json())["name"] == "Mazkira: my business"
                await page.fill("input[name=email]", "avi@example.test")
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button[type=submit].primary")
                await page.wait_for_url(f"{server.url}/portal")
                await page.goto(f"{server.url}/portal/notifications")
                assert "What is sent as a notification" in await page.inner_text("main")
                await context.close()
        finally:
            server.stop()
