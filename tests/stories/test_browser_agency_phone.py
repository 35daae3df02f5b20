"""The admin's pages on a phone (390×844), in Hebrew and in English: the navigation wraps and a
table wider than the screen scrolls inside its box, so no page scrolls sideways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
PAGES = [
    "/agency",
    "/agency/users",
    "/agency/audit",
    "/agency/reports",
    "/agency/wallboard",
    "/agency/ratings",
    "/agency/businesses/new",
]


async def test_no_agency_page_scrolls_sideways_on_a_phone(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run(
        *("create-user", "--email", "ronit@example.test", "--password", "ronit-secret"),
        *("--role", "admin", "--name", "רונית"),
    )
    server.start()
    try:
        async with chromium() as browser:
            for lang in ("he", "en"):
                await _walk_the_agency(browser, server.url, lang)
    finally:
        server.stop()


async def _walk_the_agency(browser: Any, url: str, lang: str) -> None:
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", "ronit@example.test")
    await page.fill("input[name=password]", "ronit-secret")
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{url}/agency")
    for path in PAGES:
        await page.goto(url + path)
        assert await page.get_attribute("html", "lang") == lang
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], (lang, path, width)
    assert errors == []
    await context.close()
