"""A secretary signs in through a real browser and finds her inbox in Hebrew, right to left."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser


async def test_secretary_signs_in_and_sees_the_rtl_inbox(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run(
        "create-user",
        "--email",
        "michal@example.test",
        "--password",
        "michal-secret",
        "--role",
        "secretary",
        "--name",
        "מיכל",
        "--business",
        "cohen",
    )
    server.start()
    try:
        async with chromium() as browser:
            page = await browser.new_page()  # type: ignore[attr-defined]
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            await page.goto(f"{server.url}/login")
            await page.fill("input[name=email]", "michal@example.test")
            await page.fill("input[name=password]", "michal-secret")
            await page.click("button[type=submit].primary")
            await page.wait_for_url(f"{server.url}/inbox")
            assert await page.get_attribute("html", "dir") == "rtl"
            assert await page.get_attribute("html", "lang") == "he"
            assert await page.locator("h1").inner_text() == "תיבת פניות"
            assert "אינסטלציה כהן" in await page.locator("nav.filters").inner_text()
            assert await page.evaluate("typeof htmx") == "object"  # vendored, served, no CDN
            await page.screenshot(path=str(tmp_path / "inbox.png"))
            assert errors == []  # nothing refused by the Content-Security-Policy
    finally:
        server.stop()
