"""A lead's messages read as a conversation, on a phone-sized screen, in Hebrew and in English:
the customer's SMS on the start side, and her next one appearing in the open lead page without
a reload, below the first."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.demo.webhook_payloads import signed_twilio_form, twilio_sms_params
from tests.browser import chromium, need_chromium, signed_in_page
from tests.servers import Server

pytestmark = pytest.mark.browser

LINE = "+97235551234"
ACCOUNT = "AC" + "0" * 32
TOKEN = "twilio-token-for-the-conversation-story"
TITLE = {"he": "התכתבות", "en": "Conversation"}


async def test_the_messages_of_a_lead_read_as_a_conversation_that_grows_live(
    tmp_path: Path,
) -> None:
    need_chromium()
    server = Server(tmp_path, env={"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN})
    server.env["PUBLIC_URL"] = server.url  # Twilio signs the address it posts to
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run("add-line", "--business", "cohen", "--channel", "sms", "--address", LINE)
    server.run(
        *("create-user", "--email", "michal@example.test", "--password", "michal-secret"),
        *("--role", "secretary", "--name", "מיכל", "--business", "cohen"),
    )
    server.start()
    try:
        async with chromium() as browser:
            for n, lang in enumerate(("he", "en")):
                await _read_a_conversation(browser, server.url, lang, caller=f"+97254234567{n}")
    finally:
        server.stop()


async def _sms(url: str, caller: str, text: str) -> None:
    fields = twilio_sms_params(from_=caller, to=LINE, body=text, account_sid=ACCOUNT)
    signed = signed_twilio_form(f"{url}/intake/twilio/sms", TOKEN, fields)
    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(signed.path, content=signed.body, headers=signed.headers)
    assert answer.status_code == 200, answer.text


async def _read_a_conversation(browser: Any, url: str, lang: str, caller: str) -> None:
    page, errors = await signed_in_page(browser, url, "michal@example.test", "michal-secret", lang)
    context = page.context

    first = f"שלום, יש לי נזילה במטבח ({lang})"
    await _sms(url, caller, first)
    row = page.locator("tr.lead-row", has_text=first)
    await row.wait_for(timeout=5000)
    await row.locator("a[data-open]").click()
    await page.wait_for_url(f"{url}/leads/*")
    assert await page.get_attribute("html", "lang") == lang
    thread = page.locator("section.conversation")
    await thread.locator("h2", has_text=TITLE[lang]).wait_for()
    bubbles = thread.locator("li.bubble")
    assert await bubbles.count() == 1
    assert "bubble in" in (await bubbles.first.get_attribute("class") or "")
    await page.evaluate("window.stayed = true")  # a reload would wipe it

    marker = secrets.token_hex(3)
    await _sms(url, caller, f"ואפשר מחר בבוקר? {marker}")
    await thread.locator("li.bubble", has_text=marker).wait_for(timeout=5000)
    assert await bubbles.count() == 2
    assert marker in await bubbles.nth(1).inner_text()  # below the first: oldest first
    assert await page.evaluate("window.stayed") is True
    wide = "document.documentElement.scrollWidth > window.innerWidth"
    assert not await page.evaluate(wide)
    assert errors == []
    await context.close()
