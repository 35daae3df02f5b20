"""The owner's review on a phone (390×844) in a real browser: he signs in, sees the call the
agency handled for him, rates it, and acknowledges the task handed to him; the agency reads the
rating per secretary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from console.base.db import Database
from console.base.migrate import upgrade
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls, scripts
from console.people import accounts
from console.tasks import tasks
from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-secret"
PHONE = {"width": 390, "height": 844}
JERUSALEM = ZoneInfo("Asia/Jerusalem")


async def seed(db_url: str) -> None:
    db = Database(db_url)
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
        avi = await accounts.create_user(
            session,
            email="avi@example.test",
            password=PASSWORD,
            role="owner",
            name="אבי",
            businesses=["cohen"],
        )
        await accounts.create_user(
            session, email="admin@example.test", password=PASSWORD, role="admin", name="שרה"
        )
        await scripts.save_draft(
            session,
            michal,
            business,
            scripts.ScriptDraft(greeting="{business}, שלום", questions="* מה הכתובת? | text"),
        )
        await scripts.publish_draft(session, business, now=now - timedelta(hours=1))
        lead = await arrivals.create_lead(
            session,
            michal,
            NewLead(
                business_id=str(business.id),
                phone="054-2345678",
                name="יעל",
                subject="נזילה מתחת לכיור",
            ),
            now=now - timedelta(minutes=30),
        )
        call = await calls.start_interaction(
            session, michal, lead.id, kind="inbound_call", now=now - timedelta(minutes=27)
        )
        await calls.wrap_up(
            session,
            michal,
            call.id,
            notes="הלקוחה מבקשת טכנאי מחר בבוקר",
            summary="נזילה, לתאם טכנאי",
            answers={"q1": "הרצל 12, תל אביב"},
            outcome="booked_meeting",
            now=now - timedelta(minutes=20),
        )
        due = (now + timedelta(days=1)).astimezone(JERUSALEM).strftime("%Y-%m-%dT%H:%M")
        await tasks.hand_off(
            session,
            michal,
            lead.id,
            tasks.HandOff(assignee_id=str(avi.id), title="להתקשר ליעל לגבי ביקור", due=due),
            now=now - timedelta(minutes=19),
        )
    await db.dispose()


async def sign_in(page: object, url: str, email: str) -> None:
    await page.goto(f"{url}/login")  # type: ignore[attr-defined]
    await page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    await page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    await page.click("button.primary")  # type: ignore[attr-defined]
    await page.wait_for_load_state()  # type: ignore[attr-defined]


async def test_the_owner_reviews_rates_and_acknowledges_on_his_phone(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    await seed(server.env["DATABASE_URL"].replace("sqlite://", "sqlite+aiosqlite://"))
    server.start()
    try:
        async with chromium() as browser:
            context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
            page = await context.new_page()
            await sign_in(page, server.url, "avi@example.test")
            await page.wait_for_url(f"{server.url}/portal")
            # nothing sticks out sideways on a phone
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0

            card = page.locator("article.handled", has_text="יעל")
            assert await card.count() == 1
            text = await card.inner_text()
            assert "מיכל" in text and "נזילה מתחת לכיור" in text and "נקבעה פגישה" in text
            await card.locator("summary", has_text="תשובות לתסריט").click()
            assert "הרצל 12, תל אביב" in await card.inner_text()

            # rate it four stars with a word for the agency (htmx redraws the card)
            await card.locator(".stars label").nth(3).click()
            await card.locator("input[name=comment]").fill("שירות מצוין")
            await card.locator("button[type=submit]").click()
            await page.locator("article.handled .saved").wait_for(timeout=10_000)
            card = page.locator("article.handled", has_text="יעל")
            assert await card.locator("input[name=stars][value='4']").is_checked()
            await page.screenshot(path=str(tmp_path / "portal-rated.png"), full_page=True)

            # acknowledge the task handed to him
            task = page.locator("article.owner-task", has_text="להתקשר ליעל לגבי ביקור")
            await task.locator("button", has_text="ראיתי").click()
            await task.locator("text=✓").wait_for(timeout=10_000)
            await page.reload()
            task = page.locator("article.owner-task", has_text="להתקשר ליעל לגבי ביקור")
            assert "✓" in await task.inner_text()
            assert await task.locator("button", has_text="ראיתי").count() == 0

            # his numbers: the last seven days hold the lead and the call handled for it
            await page.click("nav.mainnav a[href='/portal/kpis']")
            await page.wait_for_url(f"{server.url}/portal/kpis*")
            await page.locator("a.chip", has_text="7 הימים האחרונים").click()
            await page.locator("a.chip[aria-current]", has_text="7 הימים האחרונים").wait_for()
            numbers = await page.eval_on_selector_all(
                "dl.kpi-stats > div",
                "els => Object.fromEntries(els.map(e => [e.querySelector('dt').innerText,"
                " e.querySelector('dd').innerText]))",
            )
            assert numbers["פניות"] == "1" and numbers["שיחות והודעות שטופלו"] == "1", numbers
            # Chart.js drew the leads by day beside the table
            await page.wait_for_function(
                "Chart.getChart(document.getElementById('chart-days')) !== undefined"
            )
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0
            await page.screenshot(path=str(tmp_path / "portal-kpis.png"), full_page=True)

            # the agency sees the rating, per secretary
            await context.clear_cookies()
            await page.set_viewport_size({"width": 1280, "height": 900})
            await sign_in(page, server.url, "admin@example.test")
            await page.goto(f"{server.url}/agency/ratings")
            report = await page.locator("main").inner_text()
            assert "מיכל" in report and "4.0" in report and "שירות מצוין" in report
    finally:
        server.stop()
