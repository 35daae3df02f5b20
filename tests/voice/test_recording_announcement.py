"""A recorded call's announcement reaches the caller, end to end with real parts: `mazkira
serve`, a private Kamailio and rtpengine, Dana's console in Chromium with fake media, and
baresip calling Levi's number like a carrier (plain SIP, G.711), recording what it receives.

Levi records its calls and has an announcement ("this call is recorded"). Dana answers; the
caller hears nothing of her before the announcement (Kamailio blocks the call's media before
her answer reaches them, however late Mazkira starts it), then the announcement alone (nothing
is forwarded while it plays: two streams at once would reach the caller, and a phone keeps
one), then Dana; she hangs up, and the call's
recording is kept once on its lead. Each sound is a tone of its own (tests/voice/tones.py), so
what the caller heard says which sounds reached them: the announcement's tone is there, and the
caller's own is not (rtpengine does not send it back)."""

from __future__ import annotations

import asyncio
import io
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from console.base.db import Database
from console.base.storage import FolderStore
from console.people.audit import Actor
from console.voice import recordings
from console.voice.states import AgentState, set_state
from models import Business, User
from models.recordings import Recording
from models.voice import Call
from tests.browser import chromium, need_chromium
from tests.servers import Server
from tests.voice.conftest import SECRET
from tests.voice.sip_stack import Caller, SipStack
from tests.voice.test_phone_call import _console, phone_browser
from tests.voice.tones import levels, loudest, sine

pytestmark = pytest.mark.browser

LEVI = "+97235559876"
CALLER = "+972527654321"
ANNOUNCEMENT_HZ = 1500
VOICE_HZ = 1100  # the caller's
DANA_HZ = 440  # her browser's fake microphone (tests/voice/test_phone_call.py's tone)


async def test_the_caller_hears_the_announcement_of_a_recorded_call(tmp_path: Path) -> None:
    need_chromium()
    server = Server(tmp_path)
    stack = SipStack(tmp_path, mazkira_url=server.url, secret=SECRET)
    kept = tmp_path / "kept"
    server.env.update(stack.served_env(kept))
    server.run("migrate")
    server.run("create-business", "--slug", "levi", "--name", "Levi Clinic", "--locale", "en")
    server.run("add-line", "--business", "levi", "--channel", "phone", "--address", LEVI)
    server.run(
        *("create-user", "--email", "dana@example.test", "--password", "phone-secret"),
        *("--role", "secretary", "--name", "Dana", "--business", "levi", "--locale", "en"),
    )
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'console.db'}")
    try:
        async with db.transaction() as session:
            now = datetime.now(UTC)
            dana = await session.scalar(select(User).where(User.name == "Dana"))
            levi = await session.scalar(select(Business).where(Business.slug == "levi"))
            assert dana is not None and levi is not None
            await set_state(session, dana.id, AgentState.AVAILABLE, now=now)
            await recordings.save_settings(
                session,
                Actor.command_line(now),
                levi,
                FolderStore(kept),
                record_calls=True,
                announcement=sine(ANNOUNCEMENT_HZ, 2),
                greeting=None,
            )
        server.start()
        stack.start()
        await _story(tmp_path, server, stack, db)
    finally:
        stack.stop()
        server.stop()
        await db.dispose()


async def _story(tmp_path: Path, server: Server, stack: SipStack, db: Database) -> None:
    args = phone_browser(tmp_path)
    voice = tmp_path / "caller.wav"
    voice.write_bytes(sine(VOICE_HZ, 120))
    caller = Caller(tmp_path, stack, number=CALLER, wav=voice)
    try:
        async with chromium(args=args) as browser:
            dana = await _console(browser, server.url, "dana", "en")
            caller.call(LEVI)
            await dana.locator("#phone-banner .ringing").wait_for(timeout=15_000)
            await dana.click("#phone-banner [data-phone=answer]")
            await dana.wait_for_selector("#phone[data-state=talking]", timeout=15_000)
            caller.wait_for(r"Call established", timeout=30)
            # The caller's recording of what it receives grows as it hears: the announcement
            # (however long Mazkira takes to start it: the call is silent until then), then her.
            for _ in range(300):
                if _announced_then_dana(_heard_so_far(caller)):
                    break
                await asyncio.sleep(0.1)
            await dana.click("#phone-controls [data-phone=hangup]")
            await dana.wait_for_selector("#phone[data-state=connected]", timeout=10_000)
            caller.wait_for(r"session closed")
    finally:
        caller.stop()
    heard = caller.heard_sound()
    assert loudest(heard, ANNOUNCEMENT_HZ) > 2000, "the caller never heard the announcement"
    assert loudest(heard, VOICE_HZ) < 500  # their own voice is not sent back to them
    # The announcement alone (Dana not heard over it), then Dana once it is over.
    announced, dana = levels(heard, ANNOUNCEMENT_HZ), levels(heard, DANA_HZ)
    alone = [at for at, level in enumerate(announced) if level > 2000 and dana[at] < 200]
    assert alone, "the announcement was heard only under Dana's voice"
    # Nothing of the call before it: Kamailio blocked the media before her answer reached them.
    first = next(at for at, level in enumerate(announced) if level > 2000)
    assert max(dana[:first], default=0) < 200, "the caller heard Dana before the announcement"
    assert max(dana[alone[-1] + 1 :], default=0) > 300, "after the announcement Dana is not heard"
    await _kept_once(db)


def _heard_so_far(caller: Caller) -> bytes:
    """What the caller has received until now, as a WAV: sndfile writes its dump's header
    sizes only when the call ends, so the samples after its `data` chunk's header are taken."""
    dumps = sorted(caller.heard.glob("*-dec.wav"))
    if not dumps:
        return b""
    dump = dumps[-1].read_bytes()
    at = dump.find(b"data")
    if at < 0:
        return b""
    samples = dump[at + 8 :]
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples[: len(samples) // 2 * 2])
    return out.getvalue()


def _announced_then_dana(heard: bytes) -> bool:
    """The announcement was heard, and Dana after it."""
    if not heard:
        return False
    announced, dana = levels(heard, ANNOUNCEMENT_HZ), levels(heard, DANA_HZ)
    over = [at for at, level in enumerate(announced) if level > 2000]
    return bool(over) and max(dana[over[-1] + 1 :], default=0) > 300


async def _kept_once(db: Database) -> None:
    """The call was recorded: once it ended, its sound was kept once on its lead."""
    found: list[Recording] = []
    for _ in range(200):
        async with db.transaction(write=False) as session:
            found = list((await session.scalars(select(Recording))).all())
        if found:
            break
        await asyncio.sleep(0.1)
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.dialled == LEVI))
    assert call is not None and call.state == "ended"
    assert [(r.kind, r.call_id, r.lead_id) for r in found] == [("call", call.id, call.lead_id)]
