"""The queue is the truth (issue 21, points 1 and 4), on a phone (390×844), in Hebrew and English.

A lead arriving live takes its place in SLA order: one with 5 minutes left lands above those
with two hours left, one with an hour lands below it, and one with ten hours left, which belongs
below the rows shown, is left for "load more" to bring. The queue says how many it holds; "load
more", pressed by the keyboard, reaches lead 224 of 224 with the business filter kept. Times read
one way ("1 h 59 m"), and the page's formatter says what the server's does. The shortcuts work
on the Hebrew keyboard layout (J arrives as "ח", with code KeyJ), and rows are reached by Tab.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.base.test_durations import DURATIONS
from tests.browser import chromium, need_chromium
from tests.factories import csrf_token, sign_in
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-queue-secret"
PHONE = {"width": 390, "height": 844}
SEEDED = 221  # and three live arrivals: 224
PROMISES = {"urgent": 5, "high": 60, "low": 600}  # minutes; the web form's leads get 120
BUSINESS = {"he": ("cohen", "אינסטלציה כהן"), "en": ("levi", "Levi Design")}
SHORT = {
    "he": re.compile(r"^(\d+ שנ׳|\d+ ד׳|\d+ ש׳ \d\d ד׳)$"),
    "en": re.compile(r"^(\d+ s|\d+ m|\d+ h \d\d m)$"),
}


async def test_the_queue_keeps_its_order_counts_and_reaches_every_lead(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path, env={"INTAKE_RATE_PER_ADDRESS": "5000"})
    server.run("migrate")
    slugs = ["dental"]
    server.run("create-business", "--slug", "dental", "--name", "מרפאת שיניים")
    for slug, name in BUSINESS.values():
        server.run("create-business", "--slug", slug, "--name", name)
        server.run("set-sla", "--business", slug, "--channel", "web", "--minutes", "120")
        for priority, minutes in PROMISES.items():
            server.run(
                *("set-sla", "--business", slug, "--channel", "phone"),
                *("--priority", priority, "--minutes", str(minutes)),
            )
        slugs.append(slug)
    for email, name in (("michal@example.test", "מיכל"), ("noa@example.test", "נועה")):
        server.run(
            *("create-user", "--email", email, "--password", PASSWORD),
            *("--role", "secretary", "--name", name),
            *(arg for slug in slugs for arg in ("--business", slug)),
        )
    # Covered around the clock: two covered hours read "1 h 59 m" whatever the hour the suite
    # runs at (with office hours, an afternoon run saw "15 h 59 m", due the next morning)
    with closing(sqlite3.connect(tmp_path / "console.db")) as raw, raw:
        raw.execute("UPDATE businesses SET always_open = 1")
    server.start()
    try:
        keys = {slug: server.run("intake-key", "--business", slug).strip() for slug in slugs}
        async with (
            httpx.AsyncClient(base_url=server.url) as client,
            httpx.AsyncClient(base_url=server.url) as noa,
        ):
            await sign_in(noa, "noa@example.test", PASSWORD)
            # Noa's leads come through the API (a call typed on the new-call screen is answered
            # as it opens, and these must wait in the queue by their promises); she takes them.
            token = server.run("create-token", "--email", "noa@example.test").strip()
            noa.headers["Authorization"] = f"Bearer {token}"
            for n in range(3):
                await _arrive(client, keys, "dental", 9000 + n)
            for i, (slug, _name) in enumerate(BUSINESS.values()):
                for n in range(SEEDED):
                    await _arrive(client, keys, slug, 1000 * (i + 1) + n)
            async with chromium() as browser:
                for lang in ("he", "en"):
                    await _story(browser, server, noa, lang)
    finally:
        server.stop()


async def _arrive(client: httpx.AsyncClient, keys: dict[str, str], slug: str, n: int) -> None:
    answer = await client.post(
        f"/intake/{slug}/form",
        headers={"X-Intake-Key": keys[slug]},
        json={"name": f"פונה {n}", "phone": f"+97254{2000000 + n}", "message": f"פנייה {n}"},
    )
    assert answer.status_code == 201, answer.text


async def _call(noa: httpx.AsyncClient, business_id: str, priority: str, n: int) -> str:
    """A lead Noa opens for a caller at this priority and takes, left waiting for its first
    response."""
    answer = await noa.post(
        "/api/v1/leads",
        json={
            "business_id": business_id,
            "phone": f"+97252{7000000 + n}",
            "name": f"מתקשר {n}",
            "channel": "phone",
            "subject": priority,
            "priority": priority,
        },
    )
    assert answer.status_code == 201, answer.text
    lead = str(answer.json()["id"])
    token = await csrf_token(noa, "/inbox")
    taken = await noa.post(f"/leads/{lead}/claim", data={"csrf_token": token})
    assert taken.status_code == 303, taken.text
    return lead


async def _story(browser: Any, server: Server, noa: httpx.AsyncClient, lang: str) -> None:
    name = BUSINESS[lang][1]
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": server.url}])
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto(f"{server.url}/login")
    await page.fill("input[name=email]", "michal@example.test")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{server.url}/inbox")
    await page.wait_for_selector("#live-state.on")

    # Her business's chip: 50 rows of its 221, and the line under the queue says so.
    await page.locator("nav.filters a.chip", has_text=name).click()
    await expect(page).to_have_url(re.compile(r"business="))
    rows = page.locator("#queue-rows tr.lead-row")
    await expect(rows).to_have_count(50)
    status = page.locator("#queue-more")
    await expect(status.locator("[data-shown]")).to_have_text("50")
    await expect(status.locator("[data-matching]")).to_have_text(str(SEEDED))
    # Times read one way: two hours promised reads "1 h 59 m", not "1:59".
    countdown = rows.first.locator("time.countdown")
    await expect(countdown).to_have_text(re.compile("^1 (h|ש׳) 5\\d (m|ד׳)$"))
    await expect(rows.first.locator("time.waited")).to_have_text(SHORT[lang])
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # The formatter that ticks in the page is the server's twin, in her language.
    column = 1 if lang == "en" else 2
    for case in DURATIONS:
        shown = await page.evaluate("s => window.mazkira.duration(s)", case[0])
        assert shown == case[column], (lang, case, shown)
    over = await page.evaluate("window.mazkira.timeLeft(-(16 * 3600 + 38 * 60 + 5))")
    assert over == {"en": "over by 16 h 38 m", "he": "חריגה של 16 ש׳ 38 ד׳"}[lang]

    # Live arrivals take their place in SLA order: 5 minutes left above two hours, an hour
    # between them, ten hours below the page (left for "load more").
    business_id = re.search(r"business=([0-9a-f-]{36})", page.url).group(1)  # type: ignore[union-attr]
    first_before = await rows.first.get_attribute("id")
    base = 100 if lang == "he" else 200
    urgent = await _call(noa, business_id, "urgent", base)
    await expect(rows.first).to_have_id(f"lead-{urgent}", timeout=5000)
    sooner = await _call(noa, business_id, "high", base + 1)
    await expect(rows.nth(1)).to_have_id(f"lead-{sooner}", timeout=5000)
    await expect(rows.nth(2)).to_have_id(first_before or "")
    later = await _call(noa, business_id, "low", base + 2)
    await expect(status.locator("[data-matching]")).to_have_text("224", timeout=5000)
    await expect(status.locator("[data-shown]")).to_have_text("52")
    assert await page.locator(f"#lead-{later}").count() == 0  # below the page: not appended

    # "Load more" by the keyboard: Tab from the last row reaches it, Enter loads, and the
    # next "load more" has the focus, until all 224 are there.
    await rows.last.focus()
    for _ in range(6):
        if await page.evaluate("document.activeElement.matches('[data-more]')"):
            break
        await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.matches('[data-more]')")
    for _ in range(10):
        if not await page.locator("[data-more]").count():
            break
        await expect(page.locator("[data-more]")).to_be_focused()
        before = await rows.count()
        await page.keyboard.press("Enter")
        await expect(rows).not_to_have_count(before, timeout=5000)
    await expect(rows).to_have_count(224)
    await expect(status.locator("[data-shown]")).to_have_text("224")
    await expect(status.locator("[data-matching]")).to_have_text("224")
    await expect(rows.last).to_have_id(f"lead-{later}")  # the most time left: the very last
    ids = await rows.evaluate_all("rows => rows.map(r => r.id)")
    assert len(set(ids)) == 224
    assert "business=" in page.url  # the filter kept
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Shortcuts on the Hebrew layout: J arrives as "ח" (code KeyJ), K as "ל" (code KeyK).
    selected = page.locator("#queue-rows tr.lead-row.selected")
    await rows.first.focus()
    await expect(selected).to_have_id(f"lead-{urgent}")
    await page.evaluate("document.activeElement.blur()")
    await page.evaluate(
        """() => document.body.dispatchEvent(new KeyboardEvent("keydown",
        {key: "ח", code: "KeyJ", bubbles: true, cancelable: true}))"""
    )
    await expect(selected).to_have_id(f"lead-{sooner}")
    await expect(rows.nth(1)).to_be_focused()
    await page.keyboard.press("KeyJ")
    await expect(selected).to_have_id(first_before or "")
    await page.evaluate(
        """() => document.activeElement.dispatchEvent(new KeyboardEvent("keydown",
        {key: "ל", code: "KeyK", bubbles: true, cancelable: true}))"""
    )
    await expect(selected).to_have_id(f"lead-{sooner}")
    await expect(selected).to_have_count(1)
    # Rows are reached by Tab too: from the last chip, Tab lands on the first row, selected.
    await page.locator("nav.filters a.chip").last.focus()
    await page.keyboard.press("Tab")
    await expect(rows.first).to_be_focused()
    await expect(rows.first).to_have_class(re.compile(r"\bselected\b"))
    await page.keyboard.press("Tab")  # into the row: its contact's link (Noa holds it: no "take")
    await page.keyboard.press("Tab")  # the next row
    await expect(rows.nth(1)).to_be_focused()
    await expect(rows.nth(1)).to_have_class(re.compile(r"\bselected\b"))
    # Enter opens the selected lead.
    target = await rows.nth(1).locator("[data-open]").get_attribute("href")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{server.url}{target}")
    # I (code KeyI, "ן" on the Hebrew layout) goes back to the inbox from the lead.
    await page.evaluate(
        """() => document.body.dispatchEvent(new KeyboardEvent("keydown",
        {key: "ן", code: "KeyI", bubbles: true, cancelable: true}))"""
    )
    await page.wait_for_url(f"{server.url}/inbox")

    assert errors == [], (lang, errors)
    await context.close()
