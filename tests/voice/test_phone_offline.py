"""Without a SIP server the console works as before and says the phone is not connected; with a
SIP server that is down, the phone says it is reconnecting and everything else works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium, need_chromium, signed_in_page
from tests.servers import Server, free_port
from tests.voice.conftest import SECRET

pytestmark = pytest.mark.browser

NOT_CONNECTED = {"he": "הטלפון לא מחובר", "en": "Phone not connected"}
HOW = {"he": "איך מחברים", "en": "How to connect"}
RECONNECTING = {"he": "הטלפון מתחבר מחדש", "en": "Phone reconnecting"}
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
SIP_DOWN = r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/' failed"


def _agency(server: Server) -> None:
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run(
        *("create-user", "--email", "michal@example.test", "--password", "phone-secret"),
        *("--role", "secretary", "--name", "מיכל", "--business", "cohen"),
    )


async def test_without_a_sip_server_and_with_one_down(tmp_path: Path) -> None:
    need_chromium()
    plain = Server(tmp_path / "plain")
    (tmp_path / "plain").mkdir()
    down = Server(
        tmp_path / "down",
        env={
            "SIP_SECRET": SECRET,
            "SIP_WS_URL": f"ws://127.0.0.1:{free_port()}",  # nobody listens
            "SIP_DOMAIN": "mazkira.test",
        },
    )
    (tmp_path / "down").mkdir()
    # The only complaint allowed is Chromium's own about the SIP WebSocket nobody answers.
    async with chromium(args=FAKE_MEDIA, expected=[SIP_DOWN]) as browser:
        for server, expected, state in (
            (plain, NOT_CONNECTED, "off"),
            (down, RECONNECTING, ""),
        ):
            _agency(server)
            server.start()
            try:
                for lang in ("he", "en"):
                    await _console(browser, server.url, lang, expected[lang], state)
            finally:
                server.stop()


async def _console(browser: Any, url: str, lang: str, expected: str, state: str) -> None:
    page, _ = await signed_in_page(browser, url, "michal@example.test", "phone-secret", lang)
    context = page.context
    badge = page.locator("#phone")
    await badge.get_by_text(expected).wait_for(timeout=15_000)
    if state:
        assert await badge.get_attribute("data-state") == state
    if state == "off":  # how to connect it: in the top bar, opened by a click (or a tap)
        await badge.get_by_text(HOW[lang]).click()
        help_text = badge.locator(".phone-help")
        await help_text.wait_for()  # shown, not a tooltip
        assert "deploy/sip/README.md" in await help_text.inner_text()
        assert await help_text.is_visible()
    assert not await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    # Everything else works: the new-call form opens.
    await page.goto(f"{url}/leads/new")
    assert await page.locator("input[name=phone]").count() == 1
    await context.close()
