"""A call from the first ring to its wrap-up on a phone-sized screen, in Hebrew and in English
(issue 21, points 6, 9 and 10).

The admin says a caller who is not interested is a lost lead. Michal types in a call: a number
that is no number is refused beside the field with what she typed kept; corrected, "open and
start logging" opens the lead with the call log running and its urgent priority on it. Her
date answer of 0001-01-01 is refused beside that answer, the notes kept; "meeting set" moves
the lead to the meeting stage and opens the appointment form. The caller calls again: the new
call screen finds him and his open lead at that business (another business shows no such
caller), and "continue this lead" starts the call there. Left alone, that call is in her
"mine" list and at the top of its lead; before the idle time she is asked whether she is still
on it, at it the timer stops and she is asked to wrap up. Nothing is wider than the screen; no
console error or CSP violation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser import chromium, need_chromium
from tests.servers import Server

pytestmark = pytest.mark.browser

PASSWORD = "new-call-secret"
PHONE = {"width": 390, "height": 844}
# What sticks out past a phone's width (tag, id, class, left and right), or "" when nothing does.
WIDE = """(() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return "";
  const out = (el) => { const box = el.getBoundingClientRect();
    return box.right > width + 1 || box.left < -1 ? [el, box] : null; };
  return Array.from(document.querySelectorAll("body *")).map(out).filter(Boolean).slice(-3)
    .map(([el, box]) => `${el.tagName}#${el.id}.${el.className}:${box.left}-${box.right}`)
    .join(" ");
})()"""
# A refusal in place is a 422 by design, which Chromium logs as a resource that failed to load.
EXPECTED_REFUSAL = re.compile(r"^Failed to load resource: .* status of 422 ")
# A CSP violation and an htmx target missing are console errors too.
REPORTS = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error("CSP violation: " + e.violatedDirective + " " + (e.blockedURI || "inline")));
for (const name of ["htmx:oobErrorNoTarget", "htmx:targetError", "htmx:swapError"]) {
  document.addEventListener(name, () => console.error(name));
}"""
WORDS = {
    "he": {"refused": "אינו מספר טלפון תקין", "urgent": "דחופה", "meeting": "פגישה"},
    "en": {"refused": "is not a valid phone number", "urgent": "Urgent", "meeting": "Meeting"},
}
IDLE_MINUTES = 15


async def test_a_call_from_the_first_ring_to_its_wrap_up(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path, env={"CALL_IDLE_MINUTES": str(IDLE_MINUTES)})
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run("create-business", "--slug", "levi", "--name", "מרפאת לוי")
    server.run(
        *("create-user", "--email", "michal@example.test", "--password", PASSWORD),
        *("--role", "secretary", "--name", "מיכל", "--business", "cohen", "--business", "levi"),
    )
    server.run(
        *("create-user", "--email", "ruti@example.test", "--password", PASSWORD),
        *("--role", "admin", "--name", "רותי"),
    )
    server.start()
    try:
        async with chromium() as browser:
            for n, lang in enumerate(("he", "en")):
                await _story(browser, server.url, lang, caller=f"054-234567{n}", first=n == 0)
    finally:
        server.stop()


async def _signed_in(browser: Any, url: str, email: str, lang: str) -> tuple[Any, list[str]]:
    context = await browser.new_context(viewport=PHONE)
    await context.add_init_script(script=REPORTS)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and not EXPECTED_REFUSAL.search(m.text)
            else None
        ),
    )
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_load_state("networkidle")
    return page, errors


async def _story(browser: Any, url: str, lang: str, caller: str, first: bool) -> None:
    words = WORDS[lang]
    admin, admin_errors = await _signed_in(browser, url, "ruti@example.test", lang)
    await admin.goto(f"{url}/agency")
    cohen_link = admin.locator('td a[href^="/agency/businesses/"]', has_text="כהן").first
    cohen_url = url + ((await cohen_link.get_attribute("href")) or "").split("#")[0]
    if first:  # Cohen's script asks for a date
        await admin.goto(f"{cohen_url}/script")
        await admin.fill("textarea[name=greeting]", "{business}, שלום {contact}")
        await admin.fill("textarea[name=questions]", "* כתובת | text\nלאיזה יום? | date")
        await admin.locator("#preview", has_text="לאיזה יום?").wait_for()
        await admin.click("button[name=action][value=publish]")
        await admin.wait_for_load_state()
    # The outcomes: "not interested" closes the lead as lost at Cohen's.
    await admin.goto(cohen_url)
    outcomes = admin.locator("#outcomes")
    await outcomes.locator("select[name=not_interested]").select_option("lost")
    await outcomes.locator("button[type=submit]").click()
    await expect(admin.locator("#outcomes .saved")).to_be_visible()
    assert await admin.locator("#outcomes select[name=booked_meeting]").input_value() == "meeting"
    assert await admin.evaluate(WIDE) == ""

    # A new call: refused in place, then opened with the call log running (point 6).
    page, errors = await _signed_in(browser, url, "michal@example.test", lang)
    await page.goto(f"{url}/leads/new")
    assert await page.evaluate(WIDE) == ""
    await page.select_option("select[name=business_id]", label="אינסטלציה כהן")
    await page.fill("input[name=phone]", "050-1234567")  # possible, not valid
    await page.fill("input[name=name]", "דוד אזולאי")
    await page.fill("textarea[name=message]", "נזילה במטבח")
    await page.select_option("select[name=priority]", "urgent")
    await page.click("#new-call-form button.primary")
    await expect(page.locator("#new-call-phone-error")).to_contain_text(words["refused"])
    assert page.url == f"{url}/leads/new"
    assert await page.input_value("input[name=name]") == "דוד אזולאי"
    assert await page.input_value("textarea[name=message]") == "נזילה במטבח"
    assert await page.input_value("select[name=priority]") == "urgent"
    await page.fill("input[name=phone]", caller)
    await page.click("#new-call-form button.primary")
    await page.wait_for_url(re.compile(r"/leads/[0-9a-f-]{36}#call-log$"))
    lead_url = page.url.split("#")[0]
    await expect(page.locator("#call-form")).to_be_visible()
    await expect(page.locator("#call-form time.timer")).not_to_have_text("00:00", timeout=5000)
    await expect(page.locator(".lead-head .priority")).to_contain_text(words["urgent"])
    assert "דוד אזולאי" in await page.locator("h1").inner_text()
    assert await page.evaluate(WIDE) == ""

    # An impossible date is refused beside its answer, what she typed kept (point 9).
    await page.fill("#call-form textarea[name=notes]", "נזילה מתחת לכיור")
    await page.fill("#call-form input[name='answers[q1]']", "רחוב הרצל 1")
    await page.fill("#call-form input[name='answers[q2]']", "0001-01-01")
    await page.select_option("#call-form select[name=outcome]", "booked_meeting")
    await page.click("#call-form button[data-key=w]")
    date_error = page.locator("[id='call-answers[q2]-error']")
    await expect(date_error).to_be_visible()
    assert await page.input_value("#call-form textarea[name=notes]") == "נזילה מתחת לכיור"
    assert await page.input_value("#call-form input[name='answers[q2]']") == "0001-01-01"
    assert await page.input_value("#call-form select[name=outcome]") == "booked_meeting"
    assert await page.evaluate(WIDE) == ""
    # A real date: the meeting set moves the lead to the meeting stage, the form to book opens.
    await page.fill("#call-form input[name='answers[q2]']", "2026-12-24")
    await page.click("#call-form button[data-key=w]")
    await expect(page.locator("#appointment-form input[name=day]")).to_be_focused()
    await expect(page.locator(".lead-head .stage")).to_have_text(words["meeting"])
    await expect(page.locator("#call-form")).to_have_count(0)
    assert await page.evaluate(WIDE) == ""

    # He calls again: found with his open lead, at Cohen's only; "continue this lead".
    await page.goto(f"{url}/leads/new")
    await page.select_option("select[name=business_id]", label="אינסטלציה כהן")
    await page.fill("input[name=phone]", caller)
    panel = page.locator("#caller")
    await expect(panel.locator("h2")).to_contain_text("דוד אזולאי")
    await expect(panel.locator(".open-leads li")).to_have_count(1)
    await page.select_option("select[name=business_id]", label="מרפאת לוי")
    await expect(panel.locator("h2")).to_have_count(0)  # Levi's clinic has no such caller
    await expect(panel.locator(".open-leads")).to_have_count(0)
    await page.select_option("select[name=business_id]", label="אינסטלציה כהן")
    await expect(panel.locator("h2")).to_contain_text("דוד אזולאי")
    assert await page.evaluate(WIDE) == ""
    await page.clock.install()  # the idle time below passes on the page's clock
    await panel.locator(".open-leads button").click()
    await page.wait_for_url(f"{lead_url}#call-log")
    await expect(page.locator("#call-form")).to_be_visible()

    # Not wrapped up: in her "mine" list and at the top of its lead (point 10).
    await page.goto(f"{url}/inbox?holder=mine")
    unfinished = page.locator(".unfinished-calls li")
    await expect(unfinished).to_have_count(1)
    await expect(unfinished).to_contain_text("דוד אזולאי")
    assert await page.evaluate(WIDE) == ""
    await unfinished.locator("a").click()
    await page.wait_for_url(f"{lead_url}#call-log")
    await expect(page.locator(".unfinished-call")).to_be_visible()
    # Quiet for most of the idle time: is she still on the call? She is.
    await page.clock.fast_forward(f"{IDLE_MINUTES - 1}:30")
    ask = page.locator("#call-form [data-idle-ask]")
    await expect(ask).to_be_visible()
    await ask.locator("button").click()
    await expect(ask).to_be_hidden()
    await expect(page.locator("#save-state")).not_to_be_empty()
    # Then gone: at the idle time the timer stops and she is asked to wrap up.
    await page.clock.fast_forward(f"{IDLE_MINUTES + 1}:00")
    await expect(page.locator("#call-form [data-idle-stopped]")).to_be_visible()
    timer = page.locator("#call-form time.timer")
    await expect(timer).to_have_class(re.compile(r"\bstopped\b"))
    stopped_at = await timer.inner_text()
    await page.clock.fast_forward("05:00")
    assert await timer.inner_text() == stopped_at
    await expect(page.locator("#call-form select[name=outcome]")).to_be_focused()
    await page.select_option("#call-form select[name=outcome]", "call_back")
    await page.fill("#call-form input[name='answers[q1]']", "רחוב הרצל 1")
    await page.click("#call-form button[data-key=w]")
    await expect(page.locator("#call-form")).to_have_count(0)
    await expect(page.locator(".unfinished-call")).to_have_count(0)
    assert await page.evaluate(WIDE) == ""

    for each in (admin, page):
        assert await each.get_attribute("html", "lang") == lang
    assert admin_errors == [] and errors == [], (admin_errors, errors)
    for each in (admin, page):
        await each.context.close()
