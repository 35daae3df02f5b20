"""Without a SIP server the console works as before and says the phone is not connected; with a
SIP server that is down, the phone says it is reconnecting and everything else works, and she
can choose her microphone and speaker and see the microphone's level: the first time she uses
the phone in a browser the check opens by itself until she says the microphone works, and a
blocked microphone is said plainly there."""

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
DEVICES = {"he": "מיקרופון", "en": "Microphone"}
HEARD = "() => document.querySelector('#phone-devices [data-phone-level]').value > 0.01"
SIP_DOWN = r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/' failed"
FIRST_USE = {
    "he": "השיחה הראשונה מהדפדפן הזה",
    "en": "Your first call from this browser",
}
WORKS = {"he": "המיקרופון עובד", "en": "The microphone works"}
BLOCKED = {"he": "המיקרופון חסום", "en": "The microphone is blocked"}


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
    if not state:  # a phone: her audio devices, and the microphone's level to check it
        # Her first use in this browser: the panel opens by itself to check the microphone.
        panel = page.locator("#phone-devices")
        await page.wait_for_function("() => document.getElementById('phone-devices').open")
        await panel.get_by_text(FIRST_USE[lang]).wait_for()
        microphones = page.locator("#phone-devices select[data-phone-device=audioinput] option")
        await microphones.first.wait_for(state="attached")
        assert await panel.locator("label", has_text=DEVICES[lang]).first.is_visible()
        await page.wait_for_function(HEARD, timeout=10_000)  # Chromium's fake microphone beeps
        assert not await panel.locator("[data-phone-blocked]").is_visible()
        await panel.get_by_role("button", name=WORKS[lang]).click()
        assert not await panel.evaluate("(el) => el.open")
        assert await page.evaluate("localStorage.getItem('mazkira.phone.checked')") == "1"
        # Remembered: the next page does not open it again; she opens it herself to check.
        await page.reload()
        await badge.get_by_text(expected).wait_for(timeout=15_000)
        assert not await panel.evaluate("(el) => el.open")
        await page.locator("#phone-devices summary").click()
        await page.wait_for_function(HEARD, timeout=10_000)
        assert not await panel.get_by_text(FIRST_USE[lang]).is_visible()
    assert not await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    # Everything else works: the new-call form opens.
    await page.goto(f"{url}/leads/new")
    assert await page.locator("input[name=phone]").count() == 1
    await context.close()


async def test_a_blocked_microphone_is_said_plainly(tmp_path: Path) -> None:
    need_chromium()
    down = Server(
        tmp_path / "down",
        env={
            "SIP_SECRET": SECRET,
            "SIP_WS_URL": f"ws://127.0.0.1:{free_port()}",
            "SIP_DOMAIN": "mazkira.test",
        },
    )
    (tmp_path / "down").mkdir()
    _agency(down)
    down.start()
    try:
        # A fake microphone, but no answer to the permission prompt: headless Chromium denies it.
        async with chromium(
            args=["--use-fake-device-for-media-stream"], expected=[SIP_DOWN]
        ) as browser:
            for lang in ("he", "en"):
                page, _ = await signed_in_page(
                    browser, down.url, "michal@example.test", "phone-secret", lang
                )
                badge = page.locator("#phone")
                await page.wait_for_function(
                    "() => document.getElementById('phone').dataset.state === 'blocked'",
                    timeout=15_000,
                )
                panel = page.locator("#phone-devices")
                await page.wait_for_function("() => document.getElementById('phone-devices').open")
                note = panel.locator("[data-phone-blocked]")
                await note.wait_for()
                assert BLOCKED[lang] in await note.inner_text()
                assert await badge.get_attribute("data-state") == "blocked"
                assert not await panel.get_by_text(FIRST_USE[lang]).is_visible()
                assert await page.evaluate("localStorage.getItem('mazkira.phone.checked')") is None
                assert not await page.evaluate(
                    "document.documentElement.scrollWidth > window.innerWidth"
                )
                await page.context.close()
    finally:
        down.stop()
