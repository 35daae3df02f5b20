"""Two browsers at once: a lead appears on the secretaries' screens without a reload, the title
counts it, and when one takes it the other sees who holds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium, need_chromium
from tests.live_client import Console
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

            intake = await Console(server).sign_in("noa@example.test", PASSWORD)
            new_call = (await intake.http.get("/leads/new")).text
            business = new_call.split('<option value="')[2].split('"')[0]
            await intake.post(
                "/leads", business_id=business, phone="052-7654321", subject="פנייה חיה"
            )
            await intake.post("/leads/x/release")  # nothing; keeps the session warm
            for page in pages:
                row = page.locator("tr.lead-row", has_text="פנייה חיה")
                await row.wait_for(timeout=5000)
            assert await noa.title() != ""
            lead_id = (
                await michal.locator("tr.lead-row", has_text="פנייה חיה").get_attribute("id") or ""
            ).removeprefix("lead-")
            # The lead arrived claimed by Noa (she opened it); Michal sees Noa's name at once.
            holder = michal.locator(f"#lead-{lead_id} .holder-name")
            await holder.wait_for(timeout=5000)
            assert await holder.inner_text() == "נועה"
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
            await intake.close()
    finally:
        server.stop()
