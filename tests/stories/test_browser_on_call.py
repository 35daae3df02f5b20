"""The admin sets a business's on-call rota and its overflow rules on a phone (390×844), in Hebrew
and in English: every refusal comes back beside its field with what was chosen kept, no reload;
the owner then reads who is on call and where calls go in his portal. No console error or CSP
violation, nothing wider than the screen."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser import PHONE, chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-on-call-secret"
WIDE = "document.documentElement.scrollWidth > window.innerWidth"
REFUSED = r"status of 422"


async def test_the_admin_sets_the_rota_and_the_overflow_rules_and_the_owner_reads_them(
    tmp_path: Path,
) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run("create-business", "--slug", "levi", "--name", "מרפאת לוי")
    for email, name, role, extra in (
        ("ruti@example.test", "רותי", "admin", ()),
        ("avi@example.test", "אבי", "owner", ("--business", "cohen")),
    ):
        server.run(
            *("create-user", "--email", email, "--password", PASSWORD),
            *("--role", role, "--name", name, *extra),
        )
    server.start()
    try:
        async with chromium(expected=[REFUSED]) as browser:
            for lang in ("he", "en"):
                await _story(browser, server.url, lang)
    finally:
        server.stop()


async def _signed_in(browser: Any, url: str, email: str, lang: str) -> Any:
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_load_state("networkidle")
    return page


async def _story(browser: Any, url: str, lang: str) -> None:
    admin = await _signed_in(browser, url, "ruti@example.test", lang)
    await admin.goto(f"{url}/agency")
    await admin.locator("td a", has_text="אינסטלציה כהן").click()
    await admin.wait_for_url(re.compile(r"/agency/businesses/[0-9a-f-]{36}$"))
    business = admin.url
    await admin.click("a[href$='/on-call']")
    await admin.wait_for_url(f"{business}/on-call")
    assert not await admin.evaluate(WIDE)

    rota = admin.locator("#rota")
    await rota.locator("select[name=chain_user]").first.select_option(index=1)  # Avi
    await rota.locator("select[name=chain_reach]").first.select_option("sms")
    await rota.locator("button[type=submit]").click()
    error = admin.locator("#rota-chain-0-error")
    await expect(error).to_be_visible()  # no phone for SMS: said beside his row
    assert await rota.locator("select[name=chain_reach]").first.input_value() == "sms"
    await rota.locator("select[name=chain_reach]").first.select_option("email")
    await admin.locator("#rota button[type=submit]").click()
    await expect(admin.locator("#rota .saved")).to_be_visible()
    assert admin.url == f"{business}/on-call"  # in place: no reload, no redirect
    assert not await admin.evaluate(WIDE)

    await admin.goto(business)
    overflow = admin.locator("#overflow")
    await overflow.locator("select[name=holiday]").select_option("business")
    await overflow.locator("select[name=other_business_id]").select_option(index=0)  # none
    await overflow.locator("button[type=submit]").click()
    await expect(admin.locator("#overflow-other_business_id-error")).to_be_visible()
    assert await admin.locator("#overflow select[name=holiday]").input_value() == "business"
    await admin.locator("#overflow select[name=other_business_id]").select_option(index=1)
    await admin.locator("#overflow select[name=closed]").select_option("on_call")
    await admin.locator("#overflow button[type=submit]").click()
    await expect(admin.locator("#overflow .saved")).to_be_visible()
    assert not await admin.evaluate(WIDE)
    await admin.context.close()

    owner = await _signed_in(browser, url, "avi@example.test", lang)
    await owner.goto(f"{url}/portal")
    await owner.click("a[href$='/on-call']")
    await owner.wait_for_url(re.compile(r"/portal/businesses/[0-9a-f-]{36}/on-call$"))
    await expect(owner.locator(".on-call-now")).to_contain_text("אבי")
    await expect(owner.locator(".overflow-rules")).to_contain_text("מרפאת לוי")
    assert await owner.get_attribute("html", "lang") == lang
    assert not await owner.evaluate(WIDE)
    await owner.context.close()
