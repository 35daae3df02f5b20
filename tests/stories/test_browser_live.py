"""Two browsers at once: a lead that came in by the web form appears on the secretaries' screens
without a reload, and when one takes it the other sees who holds it, then that she is on a call."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-live-secret"


async def test_a_new_lead_appears_live_and_the_other_secretary_sees_who_took_it(
    tmp_path: Path,
) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    for email, name in (("michal@example.test", "מיכל"), ("noa@example.test", "נועה")):
        server.run(
            "create-user",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--role",
            "secretary",
            "--name",
            name,
            "--business",
            "cohen",
        )
    server.start()
    try:
        async with chromium() as browser:
            pages = []
            for email in ("michal@example.test", "noa@example.test"):
                context = await browser.new_context()  # type: ignore[attr-defined]
                page = await context.new_page()
                await page.goto(f"{server.url}/login")
                await page.fill("input[name=email]", email)
                await page.fill("input[name=password]", PASSWORD)
                await page.click("button.primary")
                await page.wait_for_url(f"{server.url}/inbox")
                await page.wait_for_selector("#live-state.on")
                pages.append(page)
            michal, noa = pages
            for page in pages:  # a mark that a reload or a navigation would wipe
                await page.evaluate("window.stayed = true")

            # A customer fills the business's web form: the row comes to both screens, untaken.
            key = server.run("intake-key", "--business", "cohen").strip()
            async with httpx.AsyncClient(base_url=server.url) as client:
                answer = await client.post(
                    "/intake/cohen/form",
                    headers={"X-Intake-Key": key},
                    json={"name": "רונית", "phone": "052-7654321", "message": "פנייה חיה"},
                )
            assert answer.status_code == 201, answer.text
            lead_id = answer.json()["lead_id"]
            for page in pages:
                row = page.locator(f"#lead-{lead_id}")
                await row.wait_for(timeout=5000)
                assert "פנייה חיה" in await row.inner_text()
                assert await row.locator("button[data-claim]").count() == 1
                assert await page.evaluate("window.stayed") is True  # no reload
                await expect(page).to_have_title(re.compile(r"^\(1\) "))  # the title counts it
            # Noa takes it from her queue; Michal's row shows her name instead of the button.
            await noa.locator(f"#lead-{lead_id} button[data-claim]").click()
            holder = michal.locator(f"#lead-{lead_id} .holder-name")
            await holder.wait_for(timeout=5000)
            assert await holder.inner_text() == "נועה"
            assert await michal.locator(f"#lead-{lead_id} button[data-claim]").count() == 0
            # Noa opens it to log the call: Michal's queue row shows her on it.
            await noa.goto(f"{server.url}/leads/{lead_id}")
            await noa.click("button[name=kind][value=inbound_call]")
            await noa.wait_for_selector("#call-form")
            presence = michal.locator(f"#row-presence-{lead_id} .viewer.calling")
            await presence.wait_for(timeout=5000)
            assert "נועה" in await presence.inner_text()
            await noa.goto(f"{server.url}/inbox")
            await michal.locator(f"#row-presence-{lead_id} .viewer").wait_for(
                state="detached", timeout=5000
            )
    finally:
        server.stop()
