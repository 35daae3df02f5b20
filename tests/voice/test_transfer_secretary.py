"""A call put through to another secretary, end to end with real parts: `mazkira serve`, a
private Kamailio and rtpengine, two consoles in Chromium with fake media (Michal's in English,
Dana's in Hebrew: two browser contexts, each its own cookies and its own registered phone) and
baresip as the caller (a carrier's plain SIP).

Michal answers a call to Cohen's line and hears the caller. Her transfer panel (T) lists the
business's other secretaries: Noa, on a break, with her state and no button; Dana, available,
with "Put through". Michal puts the caller through to her: Dana's console rings with the banner
pushed over its live socket, saying Michal put it through, with the same lead; Dana answers (A),
the same lead opens in her console, audio flows between her browser and the caller, and
Michal's phone is off the call. The record follows: the call answered last by Dana, her state
on a call and Michal's wrap-up; the caller hangs up on Dana, and the call ends then, Dana wraps
up, and the lead shows the call put through to her. Cohen records its calls: each leg is
recorded by rtpengine and kept on the lead once it ends, Michal's and the caller's leg to Dana,
both holding the caller's tone; Dana's plays like any recording (in parts, audited once, 404 to
a secretary of another business).

Then warm, by the keyboard, with a second caller: Michal talks to Dana first (her console rings
with "Michal asks to talk first"; each browser receives the other's audio through rtpengine),
connects them (C), and the caller's leg rings Dana, who answers and has the caller."""

from __future__ import annotations

import asyncio
import io
import re
import wave
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from sqlalchemy import func, select

from console.base.db import Database
from console.voice.states import AgentState, set_state, standings
from models import AuditEvent, Business, User
from models.agents import CallSettings
from models.recordings import Recording, RecordingSettings
from models.voice import Call, CallTransfer
from tests.browser import chromium, need_chromium
from tests.factories import sign_in
from tests.servers import Server
from tests.voice.conftest import SECRET
from tests.voice.sip_stack import Caller, SipStack
from tests.voice.test_phone_call import _WIDE, PUSHED, STATS, _console, phone_browser, tone
from tests.voice.test_transfer import recorded_legs

pytestmark = pytest.mark.browser

COHEN = "+97235551234"
CALLER = "+972542345678"


async def test_a_call_put_through_to_another_secretary_rings_her_console(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    stack = SipStack(tmp_path, mazkira_url=server.url, secret=SECRET)
    server.env.update(stack.served_env(tmp_path / "kept"))  # Cohen's calls are recorded
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "Cohen Plumbing", "--locale", "en")
    server.run("create-business", "--slug", "levi", "--name", "Levi Clinic", "--locale", "en")
    server.run("add-line", "--business", "cohen", "--channel", "phone", "--address", COHEN)
    for email, name, business in (
        ("michal", "Michal", "cohen"),
        ("dana", "Dana", "cohen"),
        ("noa", "Noa", "cohen"),
        ("rina", "Rina", "levi"),  # may not see Cohen's leads
    ):
        server.run(
            *("create-user", "--email", f"{email}@example.test", "--password", "phone-secret"),
            *("--role", "secretary", "--name", name, "--business", business, "--locale", "en"),
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
    """Michal is available, Noa on a break; wrap-up lasts long enough to be seen whatever the
    machine's load."""
    async with db.transaction() as session:
        people = {u.name: u for u in (await session.scalars(select(User))).all()}
        cohen = await session.scalar(select(Business).where(Business.slug == "cohen"))
        assert cohen is not None
        session.add(CallSettings(business_id=cohen.id, wrap_up_seconds=600))
        session.add(RecordingSettings(business_id=cohen.id, record_calls=True))
        now = datetime.now(UTC)
        await set_state(session, people["Michal"].id, AgentState.AVAILABLE, now=now)
        await set_state(session, people["Noa"].id, AgentState.BREAK, now=now, reason="meal")
    return people


async def _story(
    tmp_path: Path, server: Server, stack: SipStack, db: Database, people: dict[str, User]
) -> None:
    args = phone_browser(tmp_path)
    voice = tone(tmp_path / "caller.wav", 8_000, seconds=120)
    caller: Caller | None = None
    async with chromium(args=args) as browser:
        try:
            michal = await _console(browser, server.url, "michal", "en")
            caller = Caller(tmp_path, stack, number=CALLER, wav=voice)
            caller.call(COHEN)
            await michal.locator("#phone-banner .ringing").wait_for(timeout=15_000)
            await michal.click("#phone-banner [data-phone=answer]")
            await michal.wait_for_selector("#phone[data-state=talking]", timeout=15_000)
            caller.wait_for(r"Call established", timeout=30)
            await _received_audio(michal)
            # Dana's console opens now (so the call rang Michal): she is available.
            dana = await _console(browser, server.url, "dana", "he")
            await _state(db, people["Dana"], AgentState.AVAILABLE)
            heard_before = caller.heard_bytes()
            said_before = len(caller.output())
            await michal.keyboard.press("t")
            panel = michal.locator("#phone-transfer")
            noa = panel.locator(".transfer-secretary", has_text="Noa")
            await expect(noa).to_contain_text("Break")
            assert await noa.locator("button").count() == 0
            assert await michal.evaluate(_WIDE) is False
            row = panel.locator(".transfer-secretary", has_text="Dana")
            await row.locator("button[value=blind]").click()
            # Dana's console rings: the banner pushed to her, naming Michal, with the same lead.
            banner = dana.locator("#phone-banner .ringing")
            await banner.wait_for(timeout=30_000)
            await expect(banner).to_contain_text("Michal")
            await expect(banner).to_contain_text("שהעבירה")
            lead = await _lead_of_call(db)
            assert await banner.get_attribute("data-lead") == lead
            assert await dana.evaluate(PUSHED) is True
            await dana.keyboard.press("a")
            await dana.wait_for_selector("#phone[data-state=talking]", timeout=15_000)
            await expect(dana).to_have_url(re.compile(f"/leads/{lead}"))
            await expect(dana.locator("#main")).to_contain_text("Cohen Plumbing")
            # Michal is off the call once Dana has the caller.
            await michal.wait_for_selector("#phone[data-state=connected]", timeout=30_000)
            await _received_audio(dana)
            await _caller_hears_again(caller, heard_before, said_before)
            await _state(db, people["Dana"], AgentState.ON_CALL)
            await _state(db, people["Michal"], AgentState.WRAP_UP)
            async with db.transaction(write=False) as session:
                call = await session.scalar(select(Call).where(Call.dialled == COHEN))
                assert call is not None and call.state == "answered"
                assert call.answered_by_id == people["Dana"].id
            # The caller hangs up on Dana (baresip quits: its menu's /hangup would name the call
            # it no longer has, the one Michal had).
            caller.stop()
            await dana.wait_for_selector("#phone[data-state=connected]", timeout=30_000)
            await _call_over(db, people)
            await _both_legs_recorded(db, server)
            await dana.goto(f"{server.url}/leads/{lead}")
            log = dana.locator("#transfers")
            await expect(log).to_contain_text("Dana")
            await expect(log).to_contain_text("דיברה עם המתקשר")
            await _warm(tmp_path, michal, dana, stack, db, people, voice)
        finally:
            if caller is not None:
                caller.stop()


async def _received_audio(page: Any) -> None:
    """Her browser receives the caller's audio (WebRTC statistics of her call now)."""
    received = 0
    for _ in range(300):  # a machine busy with the other test worker may take a while
        received = await page.evaluate(STATS)
        if received > 4_000:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"her browser received {received} bytes of audio")


async def _caller_hears_again(caller: Caller, heard_before: int, said_before: int) -> None:
    """The caller receives audio on the call put through: its recordings grew, or baresip's
    status lines since the transfer show it receiving."""
    for _ in range(300):
        rates = re.findall(r"audio=(\d+)/(\d+) \(bit/s\)", caller.output()[said_before:])
        if caller.heard_bytes() > heard_before + 8_000 or any(int(r) > 32_000 for _, r in rates):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the caller heard nothing from the secretary it was put through to")


async def _state(db: Database, user: User, state: AgentState) -> None:
    now = None
    for _ in range(300):
        async with db.transaction(write=False) as session:
            now = (await standings(session, [user.id], now=datetime.now(UTC)))[user.id].state
        if now is state:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user.name} is {now}, not {state}")


async def _lead_of_call(db: Database) -> str:
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.dialled == COHEN))
        assert call is not None and call.lead_id is not None
        return str(call.lead_id)


async def _call_over(db: Database, people: dict[str, User]) -> None:
    """The call ended when the caller hung up on Dana: answered last by her, talk time from
    Michal's answer to that end; the transfer connected and timed; Dana wraps up."""
    for _ in range(300):
        async with db.transaction(write=False) as session:
            call = await session.scalar(select(Call).where(Call.dialled == COHEN))
            transfer = await session.scalar(select(CallTransfer))
            if call is not None and call.state == "ended" and transfer and transfer.ended_at:
                assert call.answered_by_id == people["Dana"].id
                assert call.end_reason == "caller_hangup"
                assert call.answered_at and call.ended_at and call.answered_at < call.ended_at
                assert (transfer.target, transfer.person_id) == ("secretary", people["Dana"].id)
                assert transfer.by_id == people["Michal"].id and transfer.outcome == "connected"
                assert transfer.talk_seconds is not None
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the call put through to Dana did not end")
    await _state(db, people["Dana"], AgentState.WRAP_UP)


async def _both_legs_recorded(db: Database, server: Server) -> None:
    """Cohen records its calls: Michal's leg (the call's own Call-ID, kept when her part ended)
    and the caller's leg to Dana (the transfer's), each recorded by rtpengine and kept on the
    call's lead, each holding the caller's tone; Dana's leg plays like any recording: whole, in
    parts (206), its play audited once, and 404 to a secretary of another business."""
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.dialled == COHEN))
        transfer = await session.scalar(select(CallTransfer))
    assert call is not None and transfer is not None
    kept = await recorded_legs(db, call, transfer)  # Dana's leg and Michal's
    leg = kept[transfer.leg_call_id]
    async with httpx.AsyncClient(base_url=server.url) as client:
        await sign_in(client, "dana@example.test", "phone-secret")
        page = await client.get(f"/leads/{call.lead_id}")
        sounds = {}
        for recording in kept.values():
            assert f'src="/recordings/{recording.id}"' in page.text
            whole = await client.get(f"/recordings/{recording.id}")
            assert whole.status_code == 200 and len(whole.content) == recording.size_bytes
            with wave.open(io.BytesIO(whole.content)) as sound:
                samples = array("h", sound.readframes(sound.getnframes()))
            assert max(abs(sample) for sample in samples) > 4000  # the caller's tone
            sounds[recording.id] = whole.content
        part = await client.get(f"/recordings/{leg.id}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == sounds[leg.id][100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{leg.size_bytes}"
    async with db.transaction(write=False) as session:
        plays = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "recording.played", AuditEvent.subject_id == str(leg.id))
        )
    assert plays == 1  # the part a seeking player asks for is no new play
    async with httpx.AsyncClient(base_url=server.url) as client:
        await sign_in(client, "rina@example.test", "phone-secret")
        assert (await client.get(f"/recordings/{leg.id}")).status_code == 404


async def _warm(
    tmp_path: Path,
    michal: Any,
    dana: Any,
    stack: SipStack,
    db: Database,
    people: dict[str, User],
    voice: Path,
) -> None:
    """Warm, by the keyboard: Michal talks to Dana first (the caller on hold; Dana's console
    rings with "asks to talk first" and they hear each other), then connects them (C): the
    caller's leg rings Dana, she answers and has the caller."""
    async with db.transaction() as session:  # wrap-ups cut short; Dana away until Michal answers
        now = datetime.now(UTC)
        await set_state(session, people["Michal"].id, AgentState.AVAILABLE, now=now)
        await set_state(session, people["Dana"].id, AgentState.BREAK, now=now, reason="meal")
    caller = Caller(tmp_path, stack, number=CALLER, wav=voice)
    try:
        caller.call(COHEN)
        await michal.locator("#phone-banner .ringing").wait_for(timeout=30_000)
        await michal.keyboard.press("a")
        await michal.wait_for_selector("#phone[data-state=talking]", timeout=15_000)
        async with db.transaction() as session:
            now = datetime.now(UTC)
            await set_state(session, people["Dana"].id, AgentState.AVAILABLE, now=now)
        await michal.keyboard.press("t")
        row = michal.locator("#phone-transfer .transfer-secretary", has_text="Dana")
        await row.locator("button[value=warm]").click()
        banner = dana.locator("#phone-banner .ringing")
        await banner.wait_for(timeout=30_000)
        await expect(banner).to_contain_text("Michal")
        await dana.keyboard.press("a")
        await dana.wait_for_selector("#phone[data-state=talking]", timeout=15_000)
        connect = michal.locator("#phone-controls [data-phone=connect]")
        await connect.wait_for(timeout=30_000)
        await _received_audio(dana)  # Michal's voice, through rtpengine
        await _received_audio(michal)
        await _state(db, people["Dana"], AgentState.ON_CALL)
        await michal.keyboard.press("c")
        await expect(banner).to_contain_text("שהעבירה", timeout=30_000)
        # the caller's ring, not the ended talk with Michal whose banner said the same
        await dana.wait_for_selector("#phone[data-state=ringing]", timeout=30_000)
        await dana.keyboard.press("a")
        await dana.wait_for_selector("#phone[data-state=talking]", timeout=15_000)
        await michal.wait_for_selector("#phone[data-state=connected]", timeout=30_000)
        await _received_audio(dana)
        caller.stop()
        await dana.wait_for_selector("#phone[data-state=connected]", timeout=30_000)
    finally:
        caller.stop()
    for _ in range(300):
        async with db.transaction(write=False) as session:
            warm = await session.scalar(select(CallTransfer).where(CallTransfer.kind == "warm"))
            if warm is not None and warm.ended_at is not None:
                assert warm.consult_answered_at and warm.consult_ended_at
                assert warm.outcome == "connected" and warm.person_id == people["Dana"].id
                call = await session.get_one(Call, warm.call_id)
                assert call.answered_by_id == people["Dana"].id
                break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the warm transfer to Dana did not end connected")
    # Recorded too: Michal's leg and the caller's leg to Dana (their talk first is not).
    legs: set[str | None] = set()
    for _ in range(300):
        async with db.transaction(write=False) as session:
            found = await session.scalars(
                select(Recording.sip_call_id).where(Recording.call_id == call.id)
            )
            legs = set(found.all())
        if len(legs) == 2:
            break
        await asyncio.sleep(0.1)
    assert legs == {call.sip_call_id, warm.leg_call_id}
