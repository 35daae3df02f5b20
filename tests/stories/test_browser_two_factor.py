"""Two-factor sign-in in the browser, on a phone-sized screen, in Hebrew and in English: the
admin requires it of secretaries; a secretary's right password leads her to set up her app (an
inline QR code, which the CSP allows, and the key to type), her first code turns it on and shows
her recovery codes once; signed out, she signs in again with the next code of her app."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pyotp
import pytest

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
WIDE = "document.documentElement.scrollWidth > window.innerWidth"
SET_UP = {"he": "הגדרת אימות דו-שלבי", "en": "Set up two-factor sign-in"}
ASKED = {"he": "אימות דו-שלבי", "en": "Two-factor sign-in"}


async def test_a_secretary_enrols_then_signs_in_with_a_code(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run(
        *("create-user", "--email", "dana@example.test", "--password", "dana-secret"),
        *("--role", "admin", "--name", "דנה"),
    )
    for lang in ("he", "en"):
        server.run(
            *("create-user", "--email", f"michal-{lang}@example.test"),
            *("--password", "michal-secret", "--role", "secretary", "--name", "מיכל"),
            *("--business", "cohen"),
        )
    server.start()
    try:
        async with chromium() as browser:
            await _require_it(browser, server.url)
            for lang in ("he", "en"):
                await _enrol_and_sign_in(browser, server.url, lang)
    finally:
        server.stop()


async def _page(browser: Any, url: str, lang: str) -> tuple[Any, Any, list[str]]:
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


async def _sign_in(page: Any, url: str, email: str, password: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit].primary")


async def _require_it(browser: Any, url: str) -> None:
    context, page, errors = await _page(browser, url, "he")
    await _sign_in(page, url, "dana@example.test", "dana-secret")
    await page.wait_for_url(f"{url}/agency")
    await page.goto(f"{url}/agency/users")
    await page.click("#two-factor-rule button")
    await page.locator("#two-factor-rule").get_by_text("מנהלים ומזכירות חייבים").wait_for()
    assert errors == []
    await context.close()


async def _enrol_and_sign_in(browser: Any, url: str, lang: str) -> None:
    email = f"michal-{lang}@example.test"
    context, page, errors = await _page(browser, url, lang)
    await _sign_in(page, url, email, "michal-secret")
    await page.get_by_role("heading", name=SET_UP[lang]).wait_for()
    assert page.url == f"{url}/login"
    assert await page.get_attribute("html", "lang") == lang
    assert await page.locator("figure.qr svg").is_visible()  # drawn inline, nothing refused
    assert not await page.evaluate(WIDE)
    secret = (await page.inner_text(".totp-secret")).replace(" ", "")
    totp = pyotp.TOTP(secret)
    await page.fill("input[name=code]", totp.now())
    await page.click("button[type=submit].primary")
    codes = page.locator("ol.codes li")
    await codes.first.wait_for()
    assert await codes.count() == 10
    assert re.fullmatch(r"[0-9a-f]{5}-[0-9a-f]{5}", await codes.first.inner_text())
    assert not await page.evaluate(WIDE)
    await page.click("a.button.primary")
    await page.wait_for_url(f"{url}/inbox")

    await page.click("form[action='/logout'] button")
    await page.wait_for_url(f"{url}/login")
    await _sign_in(page, url, email, "michal-secret")
    await page.get_by_role("heading", name=ASKED[lang], exact=True).wait_for()
    assert await page.locator("figure.qr").count() == 0  # only the code, no QR this time
    assert not await page.evaluate(WIDE)
    # The code she enrolled with is spent; the app's next one (a step ahead) is taken.
    await page.fill("input[name=code]", totp.at(int(time.time()) + totp.interval))
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{url}/inbox")
    assert errors == [], errors
    await context.close()
