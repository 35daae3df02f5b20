"""A secretary types in a call on a phone-sized screen, in Hebrew and in English: a number that
is no number is refused in the page with what she typed kept; corrected, the call becomes her
lead through the arrival path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
REFUSED = {"he": "אינו מספר טלפון תקין", "en": "is not a valid phone number"}


async def test_a_new_call_keeps_what_she_typed_when_refused(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run(
        *("create-user", "--email", "michal@example.test", "--password", "michal-secret"),
        *("--role", "secretary", "--name", "מיכל", "--business", "cohen"),
    )
    server.start()
    try:
        async with chromium() as browser:
            for n, lang in enumerate(("he", "en")):
                await _type_a_call(browser, server.url, lang, n)
    finally:
        server.stop()


async def _type_a_call(browser: Any, url: str, lang: str, n: int) -> None:
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", "michal@example.test")
    await page.fill("input[name=password]", "michal-secret")
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{url}/inbox")

    await page.goto(f"{url}/leads/new")
    assert await page.get_attribute("html", "lang") == lang
    wide = "document.documentElement.scrollWidth > window.innerWidth"
    assert not await page.evaluate(wide)
    await page.select_option("select[name=business_id]", index=1)
    await page.fill("input[name=phone]", "050-1234567")  # possible, not valid
    await page.fill("input[name=name]", "דוד אזולאי")
    await page.fill("textarea[name=message]", "נזילה במטבח")
    await page.click("#new-call-form button.primary")
    await page.locator("#flash").get_by_text(REFUSED[lang]).wait_for()
    assert page.url == f"{url}/leads/new"
    assert await page.input_value("input[name=name]") == "דוד אזולאי"
    assert await page.input_value("textarea[name=message]") == "נזילה במטבח"
    # Chromium logs the refusal's 422 itself; nothing else may complain.
    assert [e for e in errors if "422" not in e] == []

    await page.fill("input[name=phone]", f"054-234567{n}")
    await page.click("#new-call-form button.primary")
    await page.wait_for_url(re.compile(r"/leads/[0-9a-f-]{36}$"))
    assert "דוד אזולאי" in await page.locator("h1").inner_text()
    assert not await page.evaluate(wide)
    assert [e for e in errors if "422" not in e] == []
    await context.close()
