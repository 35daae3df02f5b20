"""The admin's setup in a real browser: she creates a business, sets its hours, writes and
publishes its script and assigns a secretary and a backup; then a lead arrives by the business's
web form and the secretary opens it with the published script, while the backup sees it too."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-admin-secret"
ASSIGN = "form[action$='/assignments'].card button.primary"
PEOPLE = (
    ("admin@example.test", "admin", "שרה"),
    ("michal@example.test", "secretary", "מיכל"),
    ("noa@example.test", "secretary", "נועה"),
)


async def sign_in(page: object, url: str, email: str) -> None:
    await page.goto(f"{url}/login")  # type: ignore[attr-defined]
    await page.fill("input[name=email]", email)  # type: ignore[attr-defined]
    await page.fill("input[name=password]", PASSWORD)  # type: ignore[attr-defined]
    await page.click("button.primary")  # type: ignore[attr-defined]
    await page.wait_for_load_state()  # type: ignore[attr-defined]


async def test_the_admin_sets_up_a_business_and_its_secretary_works_its_lead(
    tmp_path: Path,
) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    for email, role, name in PEOPLE:
        server.run(
            "create-user", "--email", email, "--password", PASSWORD, "--role", role, "--name", name
        )
    server.start()
    try:
        async with chromium() as browser:
            admin_context = await browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
            page = await admin_context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await sign_in(page, server.url, "admin@example.test")
            await page.wait_for_url(f"{server.url}/agency")

            # a new business
            await page.click("a.button[href='/agency/businesses/new']")
            await page.fill("input[name=name]", "מספרת רון")
            await page.fill("input[name=slug]", "ron-hair")
            await page.click("button.primary")
            # its own page (the form posts in place, so /agency/businesses/new must not count)
            await page.wait_for_url(re.compile(r"/agency/businesses/[0-9a-f-]{36}$"))
            business_url = page.url
            assert await page.locator("h1").inner_text() == "מספרת רון"
            alert = page.locator("#secretaries + p.alert")  # what the team lacks
            rows = page.locator("#secretaries ~ table.grid tbody tr")
            assert await alert.inner_text() == "אף מזכירה אינה משרתת את העסק הזה."

            # its secretary, then her backup: the warnings go as each gap is filled
            await page.select_option("select[name=user_id]", label="מיכל (michal@example.test)")
            await page.click(ASSIGN)
            await rows.filter(has_text="מיכל").wait_for()
            assert await alert.inner_text() == "לעסק הזה אין מזכירת גיבוי."
            await page.select_option("select[name=user_id]", label="נועה (noa@example.test)")
            await page.check("input[type=checkbox][name=backup]")
            await page.click(ASSIGN)
            await rows.filter(has_text="נועה").wait_for()
            assert await alert.count() == 0
            assert "לא" in await rows.filter(has_text="מיכל").inner_text()
            assert "כן" in await rows.filter(has_text="נועה").inner_text()

            # covered hours: Saturday evening added to the week, saved and kept; then 24/7
            await page.click(".eyebrow a[href$='/hours']")
            await page.wait_for_url(f"{business_url}/hours")
            assert await page.locator("#windows-sat .closed-day").inner_text() == "סגור"
            await page.click("#day-sat a.add-window")
            await page.locator("#windows-sat input[name=sat_start]").fill("20:00")
            await page.locator("#windows-sat input[name=sat_end]").fill("23:00")
            async with page.expect_response(lambda r: r.request.method == "POST"):
                await page.click("#week button.primary")  # a flash left by a save before is no sign
            await page.locator("#flash .saved").wait_for()
            await page.reload()
            assert await page.input_value("#windows-sat input[name=sat_start]") == "20:00"
            assert await page.input_value("#windows-sat input[name=sat_end]") == "23:00"
            await page.check("input[name=always_open]")
            async with page.expect_response(lambda r: r.request.method == "POST"):
                await page.click("#week button.primary")  # a flash left by a save before is no sign
            await page.locator("#flash .saved").wait_for()
            await page.reload()
            assert await page.locator(".pagehead .hours.open").inner_text() == "פתוח עכשיו"

            # the script: written, previewed as typed, published
            await page.goto(f"{business_url}/script")
            await page.fill(
                "textarea[name=greeting]", "{business}, מדברת {secretary}, שלום {contact}"
            )
            await page.fill(
                "textarea[name=questions]",
                "* איזה שירות? | choice | תספורת, צבע\nלאיזה יום? | date",
            )
            await page.fill("textarea[name=faq]", "כמה עולה תספורת?\n120 ₪")
            await page.locator("#preview", has_text="איזה שירות?").wait_for()
            await page.click("button[name=action][value=publish]")
            await page.wait_for_load_state()
            assert "פורסמה: v1" in await page.locator(".script-editor").inner_text()
            assert errors == []

            # a customer fills the business's web form
            key = server.run("intake-key", "--business", "ron-hair").strip()
            async with httpx.AsyncClient(base_url=server.url) as client:
                answer = await client.post(
                    "/intake/ron-hair/form",
                    headers={"X-Intake-Key": key},
                    json={"name": "ליאת", "phone": "054-2345678", "message": "תספורת למחר"},
                )
            assert answer.status_code == 201, answer.text

            # the backup sees it in her queue
            backup_context = await browser.new_context()  # type: ignore[attr-defined]
            backup = await backup_context.new_page()
            await sign_in(backup, server.url, "noa@example.test")
            await backup.wait_for_url(f"{server.url}/inbox")
            assert "מספרת רון" in await backup.locator("tr.lead-row", has_text="ליאת").inner_text()

            # the secretary opens it and reads the published script, filled in
            secretary_context = await browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
            secretary = await secretary_context.new_page()
            await sign_in(secretary, server.url, "michal@example.test")
            await secretary.wait_for_url(f"{server.url}/inbox")
            row = secretary.locator("tr.lead-row", has_text="ליאת")
            assert "מספרת רון" in await row.inner_text()
            await row.locator("a").first.click()
            await secretary.wait_for_url(f"{server.url}/leads/*")
            script = secretary.locator("aside.script")
            assert "v1" in await script.locator("h2").inner_text()
            assert (
                await script.locator("blockquote.greeting").inner_text()
                == "מספרת רון, מדברת מיכל, שלום ליאת"
            )
            assert "איזה שירות?" in await script.locator("ol.questions").inner_text()
            assert await secretary.locator("p.hours.open").count() == 1
    finally:
        server.stop()
