"""A secretary chooses how the Hebrew interface addresses her, on a phone-sized screen, in Hebrew
and in English: her name in the header leads to the choice, the page speaks in the chosen form
as soon as it is saved, and so does every page after it; English reads the same either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, need_chromium, signed_in_page
from tests.servers import Server

pytestmark = pytest.mark.browser

WIDE = "document.documentElement.scrollWidth > window.innerWidth"
# The settings page's sentence, in each form (English: one for all); the shortcuts' line.
CHOOSE = {"plural": "בחרו איך", "feminine": "בחרי איך", "masculine": "בחר איך"}
SHORTCUT = {"plural": "זמינות / הפסקה", "feminine": "אני זמינה /", "masculine": "אני זמין /"}


async def test_she_chooses_how_the_interface_addresses_her(tmp_path: Path) -> None:
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
            await _choose(browser, server.url, "he", ("feminine", "masculine"))
            await _choose(browser, server.url, "en", ("plural",))
    finally:
        server.stop()


async def _choose(browser: Any, url: str, lang: str, forms: tuple[str, ...]) -> None:
    page, errors = await signed_in_page(browser, url, "michal@example.test", "michal-secret", lang)
    await page.click("header a.who")
    await page.wait_for_url(f"{url}/settings/addressing")
    assert await page.get_attribute("html", "lang") == lang
    for form in forms:
        await page.check(f"input[name=addressed_as][value={form}]")
        await page.click("#addressing button[type=submit]")
        await page.locator("#addressing-saved").wait_for()
        sentence = await page.inner_text("main p.muted")
        if lang == "he":
            assert CHOOSE[form] in sentence, sentence
        else:
            assert "Choose how Mazkira addresses you" in sentence, sentence
        assert await page.is_checked(f"input[name=addressed_as][value={form}]")
        assert not await page.evaluate(WIDE)
        await page.goto(f"{url}/inbox")  # every page after it speaks so
        shortcuts = await page.text_content("#shortcuts dl") or ""
        if lang == "he":
            assert SHORTCUT[form] in shortcuts, shortcuts
        else:
            assert "I am available / on a break / offline" in shortcuts
        assert not await page.evaluate(WIDE)
        await page.goto(f"{url}/settings/addressing")
    assert errors == []
    await page.context.close()
