"""From the SIP server receiving a call to the ringing banner in a console, with the real stack:
`mazkira serve` on a SQLite database of its own, a private rtpengine and Kamailio with the
shipped `deploy/sip/kamailio.cfg` (console/demo/sip_stack.py), Chromium with fake media devices
as a signed-in secretary whose phone is registered, and baresip calling the business's number as
a carrier would. `python -m bench.voice` runs it when those are installed (`ring_to_pop_ms`).

The start is Kamailio's own log line for the trunk's INVITE (`$TV(Sn)`); the end is the moment
the banner is in her page and shown (a MutationObserver in the page, `Date.now()` with
microseconds from `performance`); both read this machine's clock. Each call is then hung up by
the caller (CANCEL while it rings), which frees her for the next.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import intake_env
from bench.intake import Served
from console.base.db import Database
from console.base.migrate import upgrade
from console.channels.lines import add_line
from console.demo import sip_stack
from console.demo.sip_stack import RING_WAV, Caller, SipStack
from console.people.passwords import hash_password
from console.voice.states import AgentState, set_state
from models import Business, SecretaryAssignment, User

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]
NUMBER = "+97235551234"
SECRET = "benchPopSharedWithKamailio"
PASSWORD = "bench-pop-secret"
# When each banner was in the page and shown (ms since the epoch), by its call's SIP Call-ID.
WATCH = """() => {
  window.pops = {};
  const banner = document.getElementById("phone-banner");
  const box = document.getElementById("phone-call");
  new MutationObserver(() => {
    const shown = banner.querySelector(".ringing[data-call]");
    if (shown && !box.hidden && !(shown.dataset.call in window.pops)) {
      window.pops[shown.dataset.call] = performance.timeOrigin + performance.now();
    }
  }).observe(banner, { childList: true, subtree: true });
}"""
INVITE = re.compile(r"call (\S+): INVITE for \S+ from the trunk at (\d+\.\d+)")


def available() -> bool:
    """Kamailio, rtpengine, baresip, Chromium and Playwright are all here."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return False
    return not sip_stack.missing() and CHROMIUM.exists()


async def seed(url: str) -> None:
    """One business with a phone line, one secretary serving it, available."""
    db = Database(url)
    try:
        await upgrade(db)
        async with db.transaction() as session:
            shop = Business(slug="cohen", name="Cohen Plumbing", intake_key=uuid.uuid4().hex)
            person = User(
                email="michal@bench.test",
                name="Michal",
                role="secretary",
                password_hash=hash_password(PASSWORD),
            )
            session.add_all([shop, person])
            await session.flush()
            session.add(SecretaryAssignment(user_id=person.id, business_id=shop.id))
            await add_line(session, shop, "phone", NUMBER)
            await set_state(session, person.id, AgentState.AVAILABLE, now=datetime.now(UTC))
    finally:
        await db.dispose()


async def measure(calls: int = 5) -> dict[str, Any]:
    """`calls` calls one after another; the median and each one's figure (ms)."""
    from playwright.async_api import async_playwright

    work = Path(tempfile.mkdtemp(prefix="mazkira-bench-pop-"))
    url = f"sqlite+aiosqlite:///{work / 'pop.db'}"
    server: Served | None = None
    stack: SipStack | None = None
    try:
        await seed(url)
        server = Served("console.cli", ["serve"], {}, work / "console.log")
        stack = SipStack(work, mazkira_url=f"http://127.0.0.1:{server.port}", secret=SECRET)
        server.env.update(
            {
                **intake_env(url, secret="bench-pop"),
                "SIP_SECRET": SECRET,
                "SIP_WS_URL": stack.ws_url,
                "SIP_DOMAIN": stack.domain,
            }
        )
        server.start()
        await server.ready()
        await asyncio.to_thread(stack.start)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                figures = await _calls(browser, work, server, stack, calls)
            finally:
                await browser.close()
    finally:
        if stack is not None:
            stack.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"ring_to_pop_ms": round(statistics.median(figures), 1), "each_ms": figures}


async def _calls(
    browser: Any, work: Path, server: Served, stack: SipStack, calls: int
) -> list[float]:
    base = f"http://127.0.0.1:{server.port}"
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=email]", "michal@bench.test")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{base}/inbox")
    await page.wait_for_selector("#phone[data-state=connected]", timeout=20_000)
    await page.wait_for_selector("#live-state.on", timeout=20_000)
    await page.evaluate(WATCH)
    figures: list[float] = []
    for n in range(calls):
        caller = Caller(work, stack, number=f"+97254234{n:04d}", wav=RING_WAV)
        caller.call(NUMBER)
        try:
            await page.wait_for_function(
                f"() => Object.keys(window.pops).length > {n}", timeout=20_000
            )
            pops: dict[str, float] = await page.evaluate("window.pops")
            call_id = list(pops)[n]  # in the order they came
            invites = dict(INVITE.findall(stack.log_text()))
            figures.append(round(pops[call_id] - float(invites[call_id]) * 1000, 1))
        finally:
            await asyncio.to_thread(caller.stop)  # a CANCEL: she is free again
        await page.wait_for_selector("#phone[data-state=connected]", timeout=20_000)
    return figures
