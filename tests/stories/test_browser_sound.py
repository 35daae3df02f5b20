"""The new-lead sound: the sign-in click unlocks it (Chrome counts a gesture on the page before),
and where the browser holds it back (a new tab, no gesture yet) the console says "sound is off —
click to turn on" until her first click. In Hebrew and in English."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.browser import chromium, need_chromium, signed_in_page
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-sound-secret"
SOUND_OFF = {"he": "הצליל כבוי — הפעלה בלחיצה", "en": "Sound is off — click to turn on"}
WIDE = "document.documentElement.scrollWidth > window.innerWidth"
# Chrome's policy on the desktop (its default, named): a page may play once the user has acted
# on it, or on the page of this site before it in the same tab.
DESKTOP = "--autoplay-policy=document-user-activation-required"


async def test_the_sign_in_unlocks_the_sound_and_a_blocked_sound_says_so(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run(
        "create-user",
        *("--email", "michal@example.test", "--password", PASSWORD, "--role", "secretary"),
        *("--name", "מיכל", "--business", "cohen"),
    )
    key = ""
    server.start()
    try:
        key = server.run("intake-key", "--business", "cohen").strip()
        async with chromium(args=[DESKTOP]) as browser:
            for lang, phones in (
                ("he", ("052-7654321", "054-2345678")),
                ("en", ("052-7654322", "054-2345679")),
            ):
                page = await _inbox(browser, server.url, lang)
                # The sign-in click counts: sound on, nothing to ask, and a new lead beeps.
                assert (await _sound(page))["state"] == "running"
                await expect(page.locator("#sound-off")).to_be_hidden()
                await _beeps_for_a_lead(page, server.url, key, phones[0])
                # The console opened again in a new tab, signed in already: no gesture yet, so
                # the browser holds the sound back and the console says so, until her click.
                tab = await page.context.new_page()
                await tab.goto(f"{server.url}/inbox")
                await tab.wait_for_selector("#live-state.on")
                button = tab.locator("#sound-off")
                await expect(button).to_be_visible()
                await expect(button).to_have_text(SOUND_OFF[lang])
                assert await tab.evaluate(WIDE) is False
                assert (await _sound(tab))["state"] == "suspended"
                await button.click()
                await expect(button).to_be_hidden()
                assert (await _sound(tab))["state"] == "running"
                await _beeps_for_a_lead(tab, server.url, key, phones[1])
                await page.context.close()
    finally:
        server.stop()


async def _inbox(browser: Any, url: str, lang: str) -> Any:
    page, _ = await signed_in_page(browser, url, "michal@example.test", PASSWORD, lang)
    await page.wait_for_selector("#live-state.on")
    return page


async def _sound(page: Any) -> dict[str, Any]:
    return await page.evaluate("window.mazkira.sound()")  # type: ignore[no-any-return]


async def _beeps_for_a_lead(page: Any, url: str, key: str, phone: str) -> None:
    before = (await _sound(page))["played"]
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(
            "/intake/cohen/form",
            headers={"X-Intake-Key": key},
            json={"name": "רונית", "phone": phone, "message": "צלצול"},
        )
    assert answer.status_code == 201, answer.text
    await page.locator(f"#lead-{answer.json()['lead_id']}").wait_for()
    await page.wait_for_function(f"window.mazkira.sound().played > {before}")
