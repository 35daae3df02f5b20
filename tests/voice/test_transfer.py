"""Putting a call through, end to end with real parts: `mazkira serve`, a private Kamailio and
rtpengine, Chromium with fake media as the secretary, baresip as the caller (a carrier's plain
SIP) and another baresip as the phones beyond the trunk (the owner's, the on-call person's).

Blind: Michal answers a call to Cohen's line, opens the transfer panel (T), a number not on the
business's list is refused beside the field, "Put through" to the owner: the caller is referred
to him, his phone answers, she is off the call; the lead keeps to whom, when and how long he
spoke, the call ended as transferred. Cohen records its calls: the caller's leg to his phone,
trunk to trunk, goes through rtpengine too, and is kept on the lead as its own recording beside
Michal's, holding the caller's voice and his.

Warm, by the keyboard and in Hebrew: the owner is in a meeting. The banner says so on ring,
with his note; the panel offers the person on call instead; her phone's own REFER to the
owner's number (past the panel) is refused by the SIP server. She talks to the on-call person
first (the caller on hold), goes back to the caller (R), talks to him again and connects them
(C)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import select

from console.base.db import Database
from console.voice.states import AgentState, set_state
from models import Business, User
from models.on_call import OnCallRota
from models.recordings import Recording, RecordingSettings
from models.voice import Call, CallTransfer
from tests.browser import chromium, need_chromium
from tests.factories import sign_in
from tests.servers import Server
from tests.voice.conftest import SECRET
from tests.voice.sip_stack import Caller, SipStack
from tests.voice.test_phone_call import _WIDE, _console, phone_browser, tone
from tests.voice.tones import loudest, sine

pytestmark = pytest.mark.browser

COHEN = "+97235551234"
LEVI = "+97235559876"
CALLER = "+972542345678"
OWNER = "+972527654321"
ON_CALL = "+972546667788"
CALLER_HZ = 440  # the caller's voice (test_phone_call.tone)
OWNER_HZ = 660  # the phones' beyond the trunk
# Her phone's REFER straight to an address the panel never gave: resolves to the SIP status.
RAW_REFER = """(uri) => new Promise((resolve) => {
  window.mazkiraPhone.session().refer(uri, { eventHandlers: {
    requestFailed: (e) => resolve(e.response ? e.response.status_code : e.cause),
    requestSucceeded: () => resolve(202),
  }});
})"""


async def test_blind_and_warm_transfers(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    stack = SipStack(tmp_path, mazkira_url=server.url, secret=SECRET)
    server.env.update(stack.served_env(tmp_path / "kept"))  # Cohen's calls are recorded
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "Cohen Plumbing", "--locale", "en")
    server.run("create-business", "--slug", "levi", "--name", "Levi Clinic", "--locale", "en")
    server.run("add-line", "--business", "cohen", "--channel", "phone", "--address", COHEN)
    server.run("add-line", "--business", "levi", "--channel", "phone", "--address", LEVI)
    for email, name, role in (("michal", "Michal", "secretary"), ("yossi", "Yossi", "owner")):
        server.run(
            *("create-user", "--email", f"{email}@example.test", "--password", "phone-secret"),
            *("--role", role, "--name", name, "--business", "cohen", "--locale", "en"),
        )
    server.run(
        *("create-user", "--email", "avi@example.test", "--password", "phone-secret"),
        *("--role", "owner", "--name", "Avi", "--business", "cohen", "--locale", "en"),
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    try:
        people = await _setup(db)
        server.start()
        stack.start()
        await _story(tmp_path, server, stack, db, people)
    finally:
        stack.stop()
        server.stop()
        await db.dispose()


async def _setup(db: Database) -> dict[str, User]:
    """Yossi owns Cohen's (his phone beyond the trunk); Avi, its other owner, is on call; Cohen
    records its calls."""
    async with db.transaction() as session:
        people = {u.name: u for u in (await session.scalars(select(User))).all()}
        people["Yossi"].phone, people["Avi"].phone = OWNER, ON_CALL
        cohen = await session.scalar(select(Business).where(Business.slug == "cohen"))
        assert cohen is not None
        session.add(RecordingSettings(business_id=cohen.id, record_calls=True))
        session.add(
            OnCallRota(
                business_id=cohen.id,
                ack_minutes=10,
                chain=[{"user": people["Avi"].id.hex, "reach": "call"}],
                weekly=[],
                dates=[],
                holidays="",
                eves="",
            )
        )
        await set_state(session, people["Michal"].id, AgentState.AVAILABLE, now=datetime.now(UTC))
    return people


async def _story(
    tmp_path: Path, server: Server, stack: SipStack, db: Database, people: dict[str, User]
) -> None:
    args = phone_browser(tmp_path)
    voice = tone(tmp_path / "caller.wav", 8_000, seconds=60)
    his = tmp_path / "owner.wav"
    his.write_bytes(sine(OWNER_HZ, 60))
    phones = Caller(tmp_path, stack, number=OWNER, wav=his)  # every phone beyond the trunk
    phones.answer(also=(ON_CALL,))
    # fails the story on any console error but the refusal in place (422, by design)
    async with chromium(args=args) as browser:
        try:
            michal = await _console(browser, server.url, "michal", "en")
            # Blind, by the mouse.
            caller = Caller(tmp_path, stack, number=CALLER, wav=voice)
            caller.call(COHEN)
            await _answer(michal)
            await michal.click("#phone-controls [data-phone=transfer]")
            panel = michal.locator("#phone-transfer")
            await expect(panel).to_contain_text("Yossi")
            assert await michal.evaluate(_WIDE) is False  # the panel fits a phone's 390 px
            await michal.fill("#transfer-number", "03-555-9999")
            await michal.click(".transfer-number button[value=blind]")
            refused = michal.locator("#transfer-number-error")
            await expect(refused).to_contain_text("not on the business's transfer list")
            assert await michal.input_value("#transfer-number") == "03-555-9999"
            row = panel.locator(".transfer-target", has_text="Yossi")
            await row.locator("button[value=blind]").click()
            phones.wait_for(r"Call established")  # the caller, put through to Yossi's phone
            await michal.wait_for_selector("#phone[data-state=connected]", timeout=15_000)
            await asyncio.sleep(1)
            caller.stop()  # the caller hangs up on Yossi
            await _transfer_over(db, "blind")
            await _owner_leg_recorded(db, server)
            # Warm, by the keyboard and in Hebrew: Yossi is in a meeting; the on-call person is
            # offered instead.
            await michal.context.close()
            michal = await _console(browser, server.url, "michal", "he")
            panel = michal.locator("#phone-transfer")
            await _away(db, people["Yossi"], "On site in Holon")
            # She cuts her wrap-up short from the top bar, and the next call waits until the
            # server has her available (its answer redraws the bar).
            await michal.locator("#agent-state button[value=available]").click()
            await michal.locator("#agent-state .agent-now[data-state=available]").wait_for()
            caller = Caller(tmp_path, stack, number=CALLER, wav=voice)
            caller.call(COHEN)
            banner = michal.locator("#phone-banner .ringing")
            await banner.wait_for(timeout=15_000)
            await expect(banner).to_contain_text("בפגישה עד")
            await expect(banner).to_contain_text("On site in Holon")
            await michal.keyboard.press("a")
            await michal.wait_for_selector("#phone[data-state=talking]", timeout=10_000)
            caller.wait_for(r"Call established")
            # Past the panel, her phone's own REFER to the owner is refused by the SIP server.
            status = await michal.evaluate(RAW_REFER, f"sip:{OWNER}@{stack.domain}")
            assert status == 403
            await michal.keyboard.press("t")
            row = panel.locator(".transfer-target", has_text="Yossi")
            await expect(row).to_contain_text("On site in Holon")
            assert await row.locator("button").count() == 0
            on_call = panel.locator(".transfer-target", has_text="Avi")
            await expect(on_call).to_contain_text("תורן עכשיו")
            await on_call.locator("button[value=warm]").click()
            connect = michal.locator("#phone-controls [data-phone=connect]")
            await connect.wait_for(timeout=15_000)
            await michal.keyboard.press("r")  # back to the caller
            await connect.wait_for(state="hidden")
            await expect(michal.locator("#phone-transfer-state")).to_be_visible()
            await michal.keyboard.press("t")
            await on_call.locator("button[value=warm]").click()
            await connect.wait_for(timeout=15_000)
            await michal.keyboard.press("c")
            await michal.wait_for_selector("#phone[data-state=connected]", timeout=15_000)
            await asyncio.sleep(1)
            caller.stop()
            await _transfer_over(db, "warm", returned=1)
            await _on_the_lead(michal, server.url, db)
        finally:
            phones.stop()


async def _answer(page: Any) -> None:
    await page.locator("#phone-banner .ringing").wait_for(timeout=15_000)
    await page.click("#phone-banner [data-phone=answer]")
    await page.wait_for_selector("#phone[data-state=talking]", timeout=10_000)


async def _away(db: Database, user: User, note: str) -> None:
    async with db.transaction() as session:
        person = await session.get_one(User, user.id)
        person.away_kind, person.away_note = "meeting", note
        person.away_until = datetime.now(UTC) + timedelta(hours=2)


async def _transfer_over(db: Database, kind: str, returned: int = 0) -> None:
    """The kind's last transfer was connected and ended; its call ended as transferred."""
    for _ in range(100):
        async with db.transaction(write=False) as session:
            found = (
                await session.scalars(select(CallTransfer).where(CallTransfer.kind == kind))
            ).all()
            done = [t for t in found if t.outcome == "connected" and t.ended_at]
            if done:
                transfer = done[-1]
                call = await session.get_one(Call, transfer.call_id)
                if call.end_reason == "transferred":
                    assert transfer.answered_at and transfer.talk_seconds is not None
                    assert len([t for t in found if t.outcome == "returned"]) == returned
                    if kind == "warm":
                        assert transfer.consult_answered_at and transfer.consult_ended_at
                        assert transfer.number == ON_CALL and transfer.target == "on_call"
                    else:
                        assert transfer.number == OWNER and transfer.target == "owner"
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} transfer was connected and ended")


async def recorded_legs(
    db: Database, call: Call, transfer: CallTransfer
) -> dict[str | None, Recording]:
    """The transferred call's two legs kept, by SIP Call-ID: the call's own and the caller's
    leg the transfer made, each a recording on the call's lead (the second is collected after
    the caller's BYE)."""
    kept: dict[str | None, Recording] = {}
    for _ in range(300):
        async with db.transaction(write=False) as session:
            found = await session.scalars(select(Recording).where(Recording.call_id == call.id))
            kept = {recording.sip_call_id: recording for recording in found.all()}
        if len(kept) == 2:
            break
        await asyncio.sleep(0.1)
    assert set(kept) == {call.sip_call_id, transfer.leg_call_id}, kept
    assert {(r.lead_id, r.kind) for r in kept.values()} == {(call.lead_id, "call")}
    return kept


async def _owner_leg_recorded(db: Database, server: Server) -> None:
    """The blind transfer's legs, Michal's (the call's own Call-ID) and the caller's to Yossi's
    phone (trunk to trunk through rtpengine), each kept on the call's lead once it ended; the
    owner's leg holds the caller's voice and his, and plays on the lead page."""
    async with db.transaction(write=False) as session:
        transfer = await session.scalar(select(CallTransfer).where(CallTransfer.kind == "blind"))
        assert transfer is not None
        call = await session.get_one(Call, transfer.call_id)
    kept = await recorded_legs(db, call, transfer)
    leg = kept[transfer.leg_call_id]
    async with httpx.AsyncClient(base_url=server.url) as client:
        await sign_in(client, "michal@example.test", "phone-secret")
        page = await client.get(f"/leads/{call.lead_id}")
        assert f'src="/recordings/{leg.id}"' in page.text
        played = await client.get(f"/recordings/{leg.id}")
    assert played.status_code == 200 and len(played.content) == leg.size_bytes
    assert loudest(played.content, CALLER_HZ) > 2000, "the caller's voice is not in his leg"
    assert loudest(played.content, OWNER_HZ) > 2000, "the owner's voice is not in his leg"


async def _on_the_lead(page: Any, url: str, db: Database) -> None:
    async with db.transaction(write=False) as session:
        transfer = await session.scalar(select(CallTransfer).where(CallTransfer.kind == "blind"))
        assert transfer is not None
    await page.goto(f"{url}/leads/{transfer.lead_id}")
    log = page.locator("#transfers")
    await expect(log).to_contain_text("Yossi")
    await expect(log).to_contain_text("דיבר עם המתקשר")
