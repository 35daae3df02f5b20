"""A secretary sets her state from the top bar on a phone (390×844), by tap and by key, in Hebrew
and in English; the admin's wallboard shows it, with its reason and for how long."""

from __future__ import annotations

import asyncio
import re
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
    # Her console is open: she is available (the socket brought her back and told her top bar),
    # said in her language.
    await michal.wait_for_selector("#live-state.on")
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
    # Her new page's socket is up before she acts: the closed page's grace then finds her on
    # duty (a page whose socket is not up 5 s after the last one closed counts as gone).
    await michal.wait_for_selector("#live-state.on")
    await expect(bar).to_have_attribute("data-state", "offline")
    await expect(bar).to_contain_text(words["offline"])
    await michal.locator("#agent-state button[value=available]").click()
    await expect(bar).to_have_attribute("data-state", "available")
    await expect(cell).to_have_attribute("data-state", "available")

    # Her page closes and no page of hers is up within the grace: she is taken offline (asked
    # without a page, whose socket would bring her back).
    context = michal.context
    await michal.close()
    for _ in range(150):
        mine = await context.request.get(f"{url}/agent/state", headers={"HX-Request": "true"})
        if 'data-state="offline"' in await mine.text():
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("her closed console did not take her offline")
    # Her next page draws her top bar before its socket is through (its first socket is held
    # in the browser, never reaching the server): offline. When the socket joins, it brings
    # her back and her top bar is told at once, long before its 30 s poll.
    michal = await context.new_page()
    michal.on("console", lambda m: her_errors.append(m.text) if m.type == "error" else None)
    held: list[Any] = []

    def hold_the_first(socket: Any) -> None:
        if held:
            socket.connect_to_server()
        else:
            held.append(socket)

    await michal.route_web_socket(re.compile(r"/ws$"), hold_the_first)
    await michal.goto(f"{url}/inbox")
    bar = michal.locator("#agent-state .agent-now")
    await expect(bar).to_have_attribute("data-state", "offline")
    await expect(bar).to_contain_text(words["offline"])
    assert len(held) == 1
    await held[0].close(code=1012)  # a restart's code: the page connects again, for real
    await expect(bar).to_have_attribute("data-state", "available")
    await expect(bar).to_contain_text(words["available"])
    await expect(cell).to_have_attribute("data-state", "available")

    assert her_errors == [] and board_errors == [], (her_errors, board_errors)
    await michal.context.close()
    await ronit.context.close()


def _short_time(lang: str) -> Any:
    return re.compile(r"^\d+ (שנ׳|ד׳)$" if lang == "he" else r"^\d+ (s|m)$")
