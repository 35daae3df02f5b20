"""The demo shows its mail: with no provider configured, what it would send by e-mail, SMS and
WhatsApp lands in the outbox page (/demo/outbox) instead of failing, and the admin reads it there
on a phone-sized screen in Hebrew and in English. Outside demo mode the page is not found."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.notify import OUTBOX_PREFIX, Senders
from console.channels.providers import ProviderError
from console.demo.demo import ADMIN, DEMO_PASSWORD, seed_if_empty
from models import Notification
from tests.browser import PHONE, chromium, need_chromium, signed_in_page
from tests.conftest import SECRET
from tests.factories import sign_in
from tests.served import served
from workers.notifications import send_notifications

pytestmark = pytest.mark.browser
TITLE = {"he": "דואר יוצא", "en": "Outbox"}
CHANNELS = {"he": {"דוא״ל", "SMS", "וואטסאפ"}, "en": {"E-mail", "SMS", "WhatsApp"}}


@pytest.mark.parametrize("backend", ["sqlite"])  # the demo runs on its SQLite file
async def test_the_demo_delivers_to_its_outbox_and_the_admin_reads_it(db: Database) -> None:
    need_chromium()
    async with db.transaction() as session:
        assert await seed_if_empty(session) is not None
        queued = await session.scalar(select(func.count()).where(Notification.status == "queued"))
    assert queued, "the demo queues messages for owners and customers"
    plain = Settings(database_url=db.url, secret_key=SECRET)
    env = {"DATABASE_URL": db.url, "SECRET_KEY": SECRET}
    assert Settings.from_env({**env, "DEMO_MODE": "true"}).demo_mode  # as mazkira demo sets it
    assert not Settings.from_env(env).demo_mode
    with pytest.raises(ProviderError, match="no provider configured for sms"):
        Senders(plain).for_channel("sms")

    demo = Settings(database_url=db.url, secret_key=SECRET, demo_mode=True)
    ctx: dict[str, Any] = {"db": db, "settings": demo}
    report = await send_notifications(ctx)
    await ctx["senders"].aclose()
    assert (report.sent, report.failed, report.retried) == (queued, 0, 0)
    async with db.transaction(write=False) as session:
        delivered = await session.scalar(
            select(func.count()).where(Notification.provider_id.startswith(OUTBOX_PREFIX))
        )
    assert delivered and delivered > queued  # and the secretaries' replies the demo's days sent

    app = create_app(demo, db=db, run_jobs=False)
    async with app.router.lifespan_context(app), served(app) as url:
        async with chromium() as browser:
            for lang in ("he", "en"):
                page, errors = await signed_in_page(
                    browser, url, ADMIN[0], DEMO_PASSWORD, lang, home="/agency"
                )
                await page.click("a[href='/demo/outbox']")
                await page.wait_for_url(f"{url}/demo/outbox")
                assert await page.locator("h1").inner_text() == TITLE[lang]
                messages = page.locator(".outbox-message")
                assert await messages.count() == delivered
                shown = set(await page.locator(".outbox-head .chip").all_inner_texts())
                assert shown == CHANNELS[lang]
                mail = page.locator(".outbox-message[data-channel=email]").first
                assert await mail.locator(".outbox-subject").inner_text()
                assert await mail.locator(".outbox-body").get_attribute("dir") == "auto"
                assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
                assert errors == []
                await page.context.close()
        # an owner is told the page does not exist, as for any page not his
        async with httpx.AsyncClient(base_url=url) as owner:
            await sign_in(owner, "avi@cohen-plumbing.demo", DEMO_PASSWORD)
            assert (await owner.get("/demo/outbox")).status_code == 404

    served_plainly = create_app(plain, db=db, run_jobs=False)
    async with served_plainly.router.lifespan_context(served_plainly):
        transport = httpx.ASGITransport(app=served_plainly)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as admin:
            await sign_in(admin, ADMIN[0], DEMO_PASSWORD)
            assert (await admin.get("/demo/outbox")).status_code == 404
            assert "/demo/outbox" not in (await admin.get("/agency")).text
