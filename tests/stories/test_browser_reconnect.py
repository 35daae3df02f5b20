"""The live console tells the truth: after a drop it says it is reconnecting and is back with what
it missed at once; the live dot stays on through pages opened in place; "on a call" ends with
the wrap-up; news for rows a page does not show are no errors. In Hebrew and in English."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from console.base.db import Database
from console.intake import arrivals
from console.intake.arrivals import ById, NewLead
from models import Business
from tests.browser import chromium, need_chromium, signed_in_page
from tests.servers import Server

pytestmark = pytest.mark.browser
PASSWORD = "browser-reconnect-secret"
RECONNECTING = {"he": "מתחבר מחדש…", "en": "Reconnecting…"}
WIDE = "document.documentElement.scrollWidth > window.innerWidth"
# Each lead from a caller of its own (a repeat caller's arrival joins the open lead).
CALLERS = {
    "he": ("052-7654321", "054-2345678", "053-5551234"),
    "en": ("052-7654322", "054-2345679", "053-5551235"),
}
# What a dropped network and a stopped server make the page say, and nothing else: Chromium of
# each attempt, htmx-ext-ws logging each failed attempt's error event, and her agent-state poll
# failing while the server is down (htmx logs it, and rejects its promise with nothing).
DROPPED = [
    r"^WebSocket connection to '.*/ws' failed",
    r"net::ERR_INTERNET_DISCONNECTED",
    r"net::ERR_CONNECTION_REFUSED",
    r"^\[object Event\]$",
    r"^htmx:(sendError|afterRequest), ",
    r"^uncaught: undefined$",
]
# The page's socket as its own events tell it (attempts, openings, closings, the network back),
# and the delays its reconnecting asked for; listening before the page's own scripts do.
SOCKET_LOG = """
window.socketLog = { events: [], delays: [] };
const note = (name) => () => window.socketLog.events.push(name);
document.addEventListener("htmx:wsConnecting", note("connecting"));
document.addEventListener("htmx:wsOpen", note("open"));
document.addEventListener("htmx:wsClose", note("close"));
window.addEventListener("online", note("online"));
document.addEventListener("DOMContentLoaded", () => {
  const delay = htmx.config.wsReconnectDelay;
  htmx.config.wsReconnectDelay = (n) => {
    const d = delay(n);
    window.socketLog.delays.push(d);
    return d;
  };
});
"""


async def test_the_console_comes_back_after_a_drop_and_tells_the_truth(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    for email, name in (("michal@example.test", "מיכל"), ("noa@example.test", "נועה")):
        server.run(
            "create-user",
            *("--email", email, "--password", PASSWORD, "--role", "secretary"),
            *("--name", name, "--business", "cohen"),
        )
    server.start()
    try:
        async with chromium(expected=DROPPED) as browser:
            for lang in ("he", "en"):
                await _story(browser, server, lang)
    finally:
        server.stop()


async def _story(browser: Any, server: Server, lang: str) -> None:
    url = server.url
    noa, _ = await signed_in_page(browser, url, "noa@example.test", PASSWORD, lang)
    michal, _ = await signed_in_page(browser, url, "michal@example.test", PASSWORD, lang)
    await michal.context.add_init_script(script=SOCKET_LOG)
    await michal.goto(f"{url}/inbox?channel=phone")  # web-form leads are not on her page
    for page in (noa, michal):
        await page.wait_for_selector("#live-state.on")

    # A web-form lead: Noa takes it from her queue; the lead page opens in place, live.
    first, second, third = CALLERS[lang]
    lead = await _web_form(server, first, f"פנייה {lang}")
    await noa.locator(f"#lead-{lead} button[data-claim]").click()
    await noa.wait_for_url(f"{url}/leads/{lead}")
    await noa.wait_for_selector("#live-state.on")
    await noa.evaluate("window.stayed = true")  # a mark a full load would wipe
    # She logs a call on it: Michal's queue, filtered to phone leads, has no row for her presence
    # to go to (nothing to report), and her whole queue shows Noa on the call.
    await noa.click("button[name=kind][value=inbound_call]")
    await noa.wait_for_selector("#call-form")
    await michal.goto(f"{url}/inbox")
    calling = michal.locator(f"#row-presence-{lead} .viewer.calling")
    await expect(calling).to_contain_text("נועה")
    # Wrapped up: on a call no longer, at once, while she stays on the lead page, still live.
    await noa.select_option("select[name=outcome]", index=1)
    await noa.click("#call-form button[data-key=w]")
    await noa.wait_for_selector("#call-form", state="detached")
    await expect(calling).to_have_count(0)
    await expect(michal.locator(f"#row-presence-{lead} .viewer")).to_contain_text("נועה")
    assert await noa.evaluate("window.stayed") is True
    await expect(noa.locator("#live-state")).to_have_class("live-state on")

    state = michal.locator("#live-state")
    if lang == "he":
        # The server goes away and comes back: her queue says so, asks to retry every second at
        # most, and has the lead that came meanwhile as soon as it is back.
        server.stop()
        await expect(state).to_have_text(RECONNECTING[lang])
        missed = await _lead_while_down(server, second)
        server.start()
        delays = await michal.evaluate("window.socketLog.delays")
        assert delays and max(delays) <= 1000, delays
    else:
        # The network drops (the server with it); when it returns the console reconnects at
        # once, on the browser's `online`: its first attempt after it opens the socket.
        await michal.context.set_offline(True)
        await expect(state).to_have_text(RECONNECTING[lang])
        server.stop()
        missed = await _lead_while_down(server, third)
        server.start()
        await michal.context.set_offline(False)
    await expect(state).to_be_visible()
    await michal.locator(f"#lead-{missed}").wait_for(timeout=5000)
    await expect(state).to_have_class("live-state on")
    await expect(state).to_have_text("")
    if lang == "en":
        log = await michal.evaluate("window.socketLog.events")
        back = log[log.index("online") :]
        assert back[:3] == ["online", "connecting", "open"], log
    assert await michal.evaluate(WIDE) is False
    for page in (noa, michal):
        await page.context.close()


async def _web_form(server: Server, phone: str, message: str) -> str:
    key = server.run("intake-key", "--business", "cohen").strip()
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.post(
            "/intake/cohen/form",
            headers={"X-Intake-Key": key},
            json={"name": "רונית", "phone": phone, "message": message},
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["lead_id"])


async def _lead_while_down(server: Server, phone: str) -> str:
    """A lead that arrives while the console's server is down (another process took it)."""
    db = Database(server.env["DATABASE_URL"].replace("sqlite://", "sqlite+aiosqlite://"))
    try:
        async with db.transaction() as session:
            business = (
                await session.scalars(select(Business.id).where(Business.slug == "cohen"))
            ).one()
            new = NewLead(business_id=str(business), phone=phone, name="דן", subject="חזר?")
            arrived = await arrivals.receive(
                session, arrivals.typed(ById(business), new, now=datetime.now(UTC))
            )
        return str(arrived.lead_id)
    finally:
        await db.dispose()
