"""A secretary sets her state from the top bar on a phone (390×844), by tap and by key, in Hebrew
and in English; the admin's wallboard shows it, with its reason and for how long."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "agent-states-secret"
PHONE = {"width": 390, "height": 844}
WORDS = {
    "he": {"available": "זמינה לשיחות", "break": "הפסקה · ארוחה", "offline": "לא מחוברת"},
    "en": {"available": "Available for calls", "break": "Break · Meal", "offline": "Offline"},
}


async def test_she_sets_her_state_and_the_wallboard_shows_it(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    for email, role, extra in (
        ("michal@example.test", "secretary", ["--business", "cohen", "--name", "מיכל"]),
        ("ronit@example.test", "admin", ["--name", "רונית"]),
    ):
        server.run(
            *("create-user", "--email", email, "--password", PASSWORD, "--role", role), *extra
        )
    server.start()
    try:
        async with chromium() as browser:
            for lang in ("he", "en"):
                await _story(browser, server.url, lang)
    finally:
        server.stop()


async def _open(browser: Any, url: str, lang: str, email: str, home: str) -> tuple[Any, list[str]]:
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{url}{home}")
    return page, errors


async def _story(browser: Any, url: str, lang: str) -> None:
    words = WORDS[lang]
    michal, her_errors = await _open(browser, url, lang, "michal@example.test", "/inbox")
    bar = michal.locator("#agent-state .agent-now")
    # Her console is open: she is available (the socket brought her back), said in her language.
    await michal.wait_for_selector("#live-state.on")
    await michal.reload()
    await expect(bar).to_have_attribute("data-state", "available")
    await expect(bar).to_contain_text(words["available"])

    # A meal break, chosen and then taken by the keyboard (B).
    await michal.select_option("#agent-break-reason", "meal")
    await michal.keyboard.press("Escape")  # out of the list, as the shortcuts want
    await michal.keyboard.press("b")
    await expect(bar).to_have_attribute("data-state", "break")
    await expect(bar).to_contain_text(words["break"])
    width = await michal.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (lang, width)

    # The admin's wallboard shows her on her break, and for how long.
    ronit, board_errors = await _open(browser, url, lang, "ronit@example.test", "/agency")
    await ronit.goto(f"{url}/agency/wallboard")
    cell = ronit.locator("#wallboard td[data-key=state]").first
    await expect(cell).to_have_attribute("data-state", "break")
    await expect(cell).to_contain_text(words["break"])
    await expect(cell.locator("time")).to_have_text(_short_time(lang))
    assert await ronit.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # She taps "ready": the board follows by itself (the state change is pushed to it).
    await michal.locator("#agent-state button[value=available]").click()
    await expect(bar).to_have_attribute("data-state", "available")
    await expect(cell).to_have_attribute("data-state", "available", timeout=5000)
    await expect(cell).to_contain_text(words["available"])

    # Offline by her choice (O) stays offline when she opens another page.
    await michal.keyboard.press("o")
    await expect(bar).to_have_attribute("data-state", "offline")
    await michal.goto(f"{url}/tasks")
    await expect(bar).to_have_attribute("data-state", "offline")
    await expect(bar).to_contain_text(words["offline"])
    await michal.locator("#agent-state button[value=available]").click()
    await expect(bar).to_have_attribute("data-state", "available")

    assert her_errors == [] and board_errors == [], (her_errors, board_errors)
    await michal.context.close()
    await ronit.context.close()


def _short_time(lang: str) -> Any:
    import re

    return re.compile(r"^\d+ (שנ׳|ד׳)$" if lang == "he" else r"^\d+ (s|m)$")
