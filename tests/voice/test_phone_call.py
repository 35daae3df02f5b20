"""The phone rings in the console, end to end with real parts: `mazkira serve`, a private Kamailio
and rtpengine, Chromium with fake media devices as two secretaries, and baresip calling a
business's number like a carrier (plain SIP, G.711).

Michal serves Cohen's plumbing, Dana Levi's clinic. A call to Cohen's number rings Michal's
console (not Dana's) with the business's name and greeting; she answers, audio flows both ways,
she hangs up; the lead and the call with its length are stored once. A browser cannot register
as another secretary, nor with expired credentials."""

from __future__ import annotations

import asyncio
import math
import struct
import time
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from console.base.db import Database
from console.base.storage import FolderStore
from console.voice.credentials import password_for
from console.voice.states import AgentState, set_state
from models import Business, Interaction, Lead, User
from models.recordings import Recording, RecordingSettings
from models.voice import Call
from tests.browser import chromium, need_chromium, signed_in_page
from tests.servers import Server
from tests.voice.conftest import SECRET
from tests.voice.sip_stack import Caller, SipStack

pytestmark = pytest.mark.browser

COHEN = "+97235551234"
LEVI = "+97235559876"
CALLER = "+972542345678"
PHONE = {"width": 390, "height": 844}
GREETING = "אינסטלציה כהן, שלום"
STATS = """async () => {
  const pc = window.mazkiraPhone.connection();
  if (!pc) return -1;
  let bytes = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") bytes += r.bytesReceived;
  });
  return bytes;
}"""
# A UA of the page's own JsSIP, registering with credentials the test chooses: resolves to the
# status of the refusal, or "registered".
REGISTER_AS = """([wsUrl, uri, username, password]) => new Promise((resolve) => {
  const ua = new JsSIP.UA({sockets: [new JsSIP.WebSocketInterface(wsUrl)], uri,
    authorization_user: username, password, register_expires: 60,
    contact_uri: uri.replace(/@.*/, "@x.invalid;transport=ws"),
  });
  ua.on("registered", () => { ua.stop(); resolve("registered"); });
  ua.on("registrationFailed", (e) => {
    ua.stop(); resolve(e.response ? e.response.status_code : e.cause);
  });
  ua.start();
})"""


def phone_browser(tmp_path: Path) -> list[str]:
    """Chromium's flags for her console as a phone: a fake microphone saying a 48 kHz tone, no
    permission prompt, WebRTC on loopback, sound that plays without a click."""
    sound = tone(tmp_path / "mic.wav", 48_000)
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={sound}",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--autoplay-policy=no-user-gesture-required",
    ]


def tone(path: Path, rate: int, seconds: float = 8.0) -> Path:
    """A 440 Hz tone: the fake microphone of her browser, and what the caller says."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        samples = (
            int(8000 * math.sin(2 * math.pi * 440 * n / rate)) for n in range(int(rate * seconds))
        )
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


async def test_a_call_rings_her_console_she_answers_and_it_is_recorded(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    stack = SipStack(tmp_path, mazkira_url=server.url, secret=SECRET)
    server.env.update(
        {
            **stack.served_env(tmp_path / "kept"),  # Levi's calls are recorded
            # Credentials of 20 s, fetched again every 10 s: the story outlives several.
            "SIP_CREDENTIALS_SECONDS": "20",
        }
    )
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    server.run("create-business", "--slug", "levi", "--name", "Levi Clinic", "--locale", "en")
    server.run("add-line", "--business", "cohen", "--channel", "phone", "--address", COHEN)
    server.run("add-line", "--business", "levi", "--channel", "phone", "--address", LEVI)
    for email, name, business in (("michal", "מיכל", "cohen"), ("dana", "Dana", "levi")):
        server.run(
            *("create-user", "--email", f"{email}@example.test", "--password", "phone-secret"),
            *("--role", "secretary", "--name", name, "--business", business),
        )
    server.run(
        *("create-user", "--email", "ruth@example.test", "--password", "phone-secret"),
        *("--role", "admin", "--name", "Ruth"),
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    try:
        async with db.transaction() as session:
            secretaries = select(User).where(User.role == "secretary")
            users = {u.name: u for u in (await session.scalars(secretaries)).all()}
            for user in users.values():
                await set_state(session, user.id, AgentState.AVAILABLE, now=datetime.now(UTC))
        await _publish_greeting(server, db)
        async with db.transaction() as session:
            levi = await session.scalar(select(Business).where(Business.slug == "levi"))
            assert levi is not None
            session.add(RecordingSettings(business_id=levi.id, record_calls=True))
        server.start()
        stack.start()
        await _story(tmp_path, server, stack, db, users)
    finally:
        stack.stop()
        server.stop()
        await db.dispose()


async def _publish_greeting(server: Server, db: Database) -> None:
    from console.leads.scripts import ScriptDraft, save_script
    from console.people.audit import Actor
    from models import Business

    async with db.transaction() as session:
        cohen = await session.scalar(select(Business).where(Business.slug == "cohen"))
        assert cohen is not None
        now = datetime.now(UTC)
        typed = ScriptDraft(greeting=GREETING + " {secretary} מדברת")
        await save_script(session, Actor.command_line(now), cohen, typed, publish=True)


async def _story(
    tmp_path: Path, server: Server, stack: SipStack, db: Database, users: dict[str, User]
) -> None:
    args = phone_browser(tmp_path)
    async with chromium(args=args) as browser:
        michal = await _console(browser, server.url, "michal", "he")
        dana = await _console(browser, server.url, "dana", "en")
        voice = tone(
            tmp_path / "caller.wav", 8_000, seconds=120
        )  # baresip hangs up at its end: long enough for a busy machine
        carrier = Caller(tmp_path, stack, number=CALLER, wav=voice)
        # She is on a break when the call comes: the caller waits (and hears ringing) until
        # she is back, then her console rings.
        await _move(db, users["מיכל"], AgentState.BREAK, reason="meal")
        started = time.monotonic()
        carrier.call(COHEN)
        await _call_state(db, "waiting")
        carrier.wait_for(r"180 Ringing")
        await _move(db, users["מיכל"], AgentState.AVAILABLE)
        back = time.monotonic()
        banner = michal.locator("#phone-banner .ringing")
        await banner.wait_for(timeout=15_000)
        await michal.wait_for_function(PUSHED, timeout=10_000)  # over the live socket
        ring_seconds = time.monotonic() - back
        text = await banner.inner_text()
        assert "אינסטלציה כהן" in text and GREETING + " מיכל מדברת" in text
        assert await michal.evaluate(_WIDE) is False
        assert await dana.locator("#phone-call").is_hidden()  # not her business
        await michal.click("#phone-banner [data-phone=answer]")
        await michal.wait_for_selector("#phone[data-state=talking]", timeout=10_000)
        carrier.wait_for(r"Call established")
        answered_seconds = time.monotonic() - started
        # The lead page opens in place, with her call log running, and its socket says
        # hello as that page: the supervisor opening the lead sees her on the call, and her
        # page sees the supervisor come (presence, pushed both ways).
        await michal.wait_for_url("**/leads/*#call-log", timeout=10_000)
        await michal.locator("#call-log").wait_for()
        lead_url = michal.url.split("#")[0]
        ruth, _ = await signed_in_page(
            browser, server.url, "ruth@example.test", "phone-secret", "en", home="/agency"
        )
        await ruth.goto(lead_url)
        await expect(ruth.locator(".presence .viewer.calling")).to_contain_text("מיכל")
        await expect(michal.locator("#main .presence")).to_contain_text("Ruth")
        await ruth.context.close()
        await _audio_both_ways(michal, carrier)
        await michal.click("#phone-controls [data-phone=hangup]")
        await michal.wait_for_selector("#phone[data-state=connected]", timeout=10_000)
        carrier.wait_for(r"session closed")
        carrier.stop()
        # She calls the caller back from the lead, shown as the business's number.
        callee = Caller(tmp_path, stack, number=CALLER, wav=voice)
        callee.answer(trace=True)
        await michal.click("[data-phone-dial]")
        await michal.wait_for_selector("#phone[data-state=talking]", timeout=10_000)
        # The far end sees the business's number (From and P-Asserted-Identity), not hers.
        callee.wait_for(r"Call established: sip:\+97235551234@")
        callee.wait_for(r"P-Asserted-Identity: <sip:\+97235551234@127\.0\.0\.1>")
        await _audio_both_ways(michal, callee)
        # The keypad: a tone reaches the far end (RFC 4733 in the audio).
        await michal.click("#phone-controls [data-phone=keypad]")
        await michal.click("#phone-keypad [data-dtmf='5']")
        callee.wait_for(r"received event: '5'")
        # On hold and back (a re-INVITE through rtpengine): the call goes on, audio too.
        await michal.click("#phone-controls [data-phone=hold]")
        hold = michal.locator("#phone-controls [data-phone=hold][aria-pressed=true]")
        await hold.wait_for()
        await asyncio.sleep(0.5)
        await michal.click("#phone-controls [data-phone=hold]")
        await hold.wait_for(state="detached")
        before = await michal.evaluate(STATS)
        await _audio_both_ways(michal, callee, after=before)
        for _ in range(50):  # baresip's status line comes once a second
            if callee.receiving_bits() > 0:
                break
            await asyncio.sleep(0.2)
        assert callee.receiving_bits() > 0, "after the hold the far end hears nothing"
        await michal.click("#phone-controls [data-phone=hangup]")
        await michal.wait_for_selector("#phone[data-state=connected]", timeout=10_000)
        callee.stop()
        await _refused_registrations(michal, stack, users)
        # Levi's line rings Dana; she answers and her console closes mid-call: the caller's
        # hang-up, through the SIP server, still ends the call's record.
        levi_caller = Caller(tmp_path, stack, number="+972527654321", wav=voice)
        dialled = time.monotonic()
        levi_caller.call(LEVI)
        await dana.locator("#phone-banner .ringing").wait_for(timeout=15_000)
        dial_to_banner = time.monotonic() - dialled
        await dana.wait_for_function(PUSHED, timeout=10_000)
        assert "Levi Clinic" in await dana.locator("#phone-banner").inner_text()
        assert await dana.evaluate(_WIDE) is False  # the banner in English at 390 px
        clicked = time.monotonic()
        await dana.click("#phone-banner [data-phone=answer]")
        levi_caller.wait_for(r"Call established", poll=0.01)
        click_to_established = time.monotonic() - clicked
        await dana.context.close()
        await asyncio.sleep(1)
        levi_caller.stop()  # baresip hangs up as it quits
        await _call_state(db, "ended", dialled=LEVI)
        print(
            f"banner {ring_seconds:.2f} s after she was back, answered {answered_seconds:.2f} s"
            f" after dialling; a free secretary's banner {dial_to_banner:.2f} s after baresip"
            f" was started, the call established {click_to_established:.2f} s after her click"
        )
    await _recorded_once(db, users["מיכל"], users["Dana"])
    await _levi_call_kept(db, tmp_path / "kept")
    served = (tmp_path / "serve.log").read_text()
    fetched = served.count('GET /phone/credentials HTTP/1.1" 200')
    assert fetched >= 4, f"credentials fetched {fetched} times"


_WIDE = "document.documentElement.scrollWidth > window.innerWidth"
# The banners the live socket pushed to the page (app.js hands each to phone.js as mz:ringing).
LISTEN_FOR_PUSHES = """() => { window.pushed = [];
  document.addEventListener("mz:ringing", (event) => window.pushed.push(event.detail.call)); }"""
# The ringing call's banner came by that push (a fetch is only the phone's backstop).
PUSHED = """() => window.pushed.includes(
  (document.querySelector("#phone-banner [data-call]") || {dataset: {}}).dataset.call)"""


async def _audio_both_ways(page: Any, far_end: Caller, after: int = 0) -> None:
    """Her browser receives RTP (WebRTC stats; `after` more bytes than it had), and at first the
    far end records what she sends (its recording is written in blocks, so later checks read
    its receiving bitrate instead)."""
    received = 0
    for _ in range(300):  # a machine busy with the other test worker may take a while
        received = await page.evaluate(STATS)
        if received > after + 4_000 and (after or _far_end_hears(far_end)):
            break
        await asyncio.sleep(0.1)
    assert received > after + 4_000, f"her browser received {received - after} bytes of audio"
    assert after or _far_end_hears(far_end), "the far end heard nothing"


def _far_end_hears(far_end: Caller) -> bool:
    """The caller receives her audio: its recording of it has grown (written in blocks, so on a
    busy machine it may stay empty for a while), or baresip reports it receiving RTP."""
    return far_end.heard_bytes() > 8_000 or far_end.receiving_bits() > 32_000


async def _move(db: Database, user: User, state: AgentState, reason: str | None = None) -> None:
    async with db.transaction() as session:
        await set_state(session, user.id, state, now=datetime.now(UTC), reason=reason)


async def _levi_call_kept(db: Database, folder: Path) -> None:
    """Levi records its calls: rtpengine recorded Dana's call, and once it ended its sound was
    kept once and put on its lead (console/voice/voicemail.py); Cohen's calls were not."""
    for _ in range(200):
        async with db.transaction(write=False) as session:
            kept = (await session.scalars(select(Recording))).all()
        if kept:
            break
        await asyncio.sleep(0.1)
    async with db.transaction(write=False) as session:
        levi = await session.scalar(select(Call).where(Call.dialled == LEVI))
    assert levi is not None and [(r.kind, r.call_id, r.lead_id) for r in kept] == [
        ("call", levi.id, levi.lead_id)
    ]
    assert kept[0].size_bytes > 44
    assert await FolderStore(folder).size(kept[0].key) == kept[0].size_bytes


async def _call_state(db: Database, state: str, dialled: str = COHEN) -> None:
    for _ in range(100):
        async with db.transaction(write=False) as session:
            query = select(Call.id).where(Call.state == state, Call.dialled == dialled)
            if await session.scalar(query):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no call became {state}")


async def _console(browser: Any, url: str, who: str, lang: str) -> Any:
    """Her console signed in, its phone connected; the watched browser (tests/browser.py)
    fails the story on any console error, uncaught exception or CSP violation of its pages."""
    context = await browser.new_context(viewport=PHONE)
    await context.add_cookies([{"name": "mazkira_lang", "value": lang, "url": url}])
    page = await context.new_page()
    await page.goto(f"{url}/login")
    await page.fill("input[name=email]", f"{who}@example.test")
    await page.fill("input[name=password]", "phone-secret")
    await page.click("button[type=submit].primary")
    await page.wait_for_url(f"{url}/inbox")
    await page.wait_for_selector("#phone[data-state=connected]", timeout=15_000)
    await page.evaluate(LISTEN_FOR_PUSHES)
    assert await page.evaluate(_WIDE) is False
    return page


async def _refused_registrations(page: Any, stack: SipStack, users: dict[str, User]) -> None:
    """Her own credentials do not register Dana's address; expired ones register nothing."""
    michal, dana = users["מיכל"], users["Dana"]
    domain = stack.domain
    fresh = f"{int(time.time()) + 600}:{michal.id.hex}"
    as_dana = await page.evaluate(
        REGISTER_AS,
        [stack.ws_url, f"sip:{dana.id.hex}@{domain}", fresh, password_for(SECRET, fresh)],
    )
    assert as_dana == 403
    expired = f"{int(time.time()) - 60}:{michal.id.hex}"
    old = await page.evaluate(
        REGISTER_AS,
        [stack.ws_url, f"sip:{michal.id.hex}@{domain}", expired, password_for(SECRET, expired)],
    )
    assert old != "registered"
    forged = f"{int(time.time()) + 600}:{michal.id.hex}"
    wrong = await page.evaluate(
        REGISTER_AS, [stack.ws_url, f"sip:{michal.id.hex}@{domain}", forged, "bm90LWl0"]
    )
    assert wrong != "registered"


async def _recorded_once(db: Database, michal: User, dana: User) -> None:
    async with db.transaction(write=False) as session:
        every = (await session.scalars(select(Call).order_by(Call.arrived_at))).all()
        assert len(every) == 3
        levi = every[-1]
        assert (levi.dialled, levi.state, levi.answered_by_id, levi.end_reason) == (
            LEVI,
            "ended",
            dana.id,
            "caller_hangup",
        )
        levi_log = await session.get_one(Interaction, levi.interaction_id)
        assert levi_log.user_id == dana.id and levi_log.ended_at == levi.ended_at
        calls = {c.direction: c for c in every[:2]}
        out = calls["out"]
        assert (out.state, out.answered_by_id, out.end_reason) == (
            "ended",
            michal.id,
            "agent_hangup",
        )
        assert out.answered_at and out.ended_at and out.lead_id == calls["in"].lead_id
        call = calls["in"]
        assert (call.state, call.answered_by_id, call.end_reason) == (
            "ended",
            michal.id,
            "agent_hangup",
        )
        assert call.answered_at and call.ended_at and call.ended_at > call.answered_at
        assert await session.scalar(select(func.count()).select_from(Lead)) == 2
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 2
        interaction = await session.get_one(Interaction, call.interaction_id)
        assert interaction.user_id == michal.id and interaction.ended_at == call.ended_at
