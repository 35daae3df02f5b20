"""The secretary's whole story in a real browser, then both owners' view of it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from console.base.db import Database
from console.base.migrate import upgrade
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import scripts
from tests.browser import chromium, need_chromium
from tests.factories import make_agency
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-secret"


async def seed(db_url: str) -> None:
    db = Database(db_url)
    await upgrade(db)
    async with db.transaction() as session:
        agency = await make_agency(
            session,
            a={"slug": "cohen"},
            b={"slug": "levi"},
            secretary={"email": "michal@example.test", "password": PASSWORD},
            owner_a={"email": "avi@example.test", "password": PASSWORD},
            owner_b={"email": "dana@example.test", "password": PASSWORD},
        )
        a, michal = agency.a, agency.secretary
        await scripts.save_draft(
            session,
            michal,
            a,
            scripts.ScriptDraft(
                greeting="{business}, מדברת {secretary}, שלום {contact}",
                questions="* מה הכתובת? | text\nהאם יש נזילה פעילה? | yesno",
                faq="כמה עולה ביקור?\n250 ₪",
            ),
        )
        await scripts.publish_draft(session, a, now=datetime.now(UTC))
        await arrivals.create_lead(
            session,
            michal,
            NewLead(
                business_id=str(a.id),
                phone="054-2345678",
                name="יעל",
                channel="whatsapp",
                subject="נזילה מתחת לכיור",
            ),
            now=datetime.now(UTC),
        )
    await db.dispose()


async def sign_in(page: object, url: str, email: str) -> None:
    await page.goto(f"{url}/login")  # type: ignore[attr-defined]
    await page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    await page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    await page.click("button.primary")  # type: ignore[attr-defined]
    await page.wait_for_load_state()  # type: ignore[attr-defined]


async def test_secretary_works_a_lead_and_only_its_owner_sees_the_task(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    await seed(server.env["DATABASE_URL"].replace("sqlite://", "sqlite+aiosqlite://"))
    server.start()
    try:
        async with chromium() as browser:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
            page = await context.new_page()
            await sign_in(page, server.url, "michal@example.test")
            await page.wait_for_url(f"{server.url}/inbox")
            row = page.locator("tr.lead-row", has_text="יעל")
            assert "אינסטלציה כהן" in await row.inner_text()

            await page.keyboard.press("j")  # select the first row, then take it
            await page.keyboard.press("c")
            await page.wait_for_url(f"{server.url}/leads/*")
            assert await page.locator(".holder-box strong").inner_text() == "מיכל"  # hers now
            greeting = page.locator("blockquote.greeting")
            assert await greeting.inner_text() == "אינסטלציה כהן, מדברת מיכל, שלום יעל"

            await page.keyboard.press("s")  # start logging the call
            await page.wait_for_selector("#call-form")
            await page.fill("textarea[name=notes]", "הלקוחה מדווחת על נזילה <script>x</script>")
            await page.fill("input[name='answers[q1]']", "הרצל 12, תל אביב")
            await page.locator("#save-state .saved").wait_for(timeout=10_000)
            await page.reload()  # mid-call: nothing is lost
            assert "<script>x</script>" in await page.input_value("textarea[name=notes]")
            assert await page.input_value("input[name='answers[q1]']") == "הרצל 12, תל אביב"

            avi = page.locator("select[name=assignee_id] option", has_text="אבי")
            await page.select_option("select[name=assignee_id]", await avi.get_attribute("value"))
            await page.fill("input[name=title]", "להתקשר ליעל לגבי ביקור")
            await page.click("#handoff button.primary")  # posts in place (htmx)
            tasks = page.locator(".lead-tasks", has_text="להתקשר ליעל לגבי ביקור")
            await tasks.wait_for(timeout=10_000)

            await page.select_option("select[name='answers[q2]']", "yes")
            await page.select_option("select[name=outcome]", "transferred_to_owner")
            await page.keyboard.press("Escape")
            await page.keyboard.press("w")
            await page.wait_for_selector("#call-form", state="detached")
            # the lead page comes back (htmx follows the wrap-up to it) with the call in its history
            await page.locator("ol.history", has_text="הרצל 12, תל אביב").wait_for(timeout=10_000)
            history = await page.locator("ol.history").inner_text()
            assert "הרצל 12, תל אביב" in history and "<script>x</script>" in history
            await page.screenshot(path=str(tmp_path / "lead.png"), full_page=True)

            # back in her queue the lead shows answered, and held by her
            await page.goto(f"{server.url}/inbox")
            row = page.locator("tr.lead-row", has_text="יעל")
            assert await row.locator(".answered").count() == 1
            assert await row.locator(".holder-name").inner_text() == "מיכל"

            for owner, sees in (("avi@example.test", True), ("dana@example.test", False)):
                await context.clear_cookies()
                await sign_in(page, server.url, owner)
                await page.goto(f"{server.url}/tasks")
                text = await page.locator("main").inner_text()
                assert ("להתקשר ליעל לגבי ביקור" in text) is sees, owner
    finally:
        server.stop()
