"""Voicemail through the real stack (issue 22, point 3): a call to a business whose overflow
rule says voicemail, with nobody to take it, is answered by rtpengine through Kamailio; the
caller (baresip, plain SIP, G.711) hears the greeting the agency uploaded and speaks; when they
hang up, the message is on the missed-call lead (with its SLA clock like any lead), kept once in
the recordings store, and plays on the lead page for its secretary."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
import wave
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from console.base.db import Database
from console.base.storage import FolderStore
from console.people.audit import Actor
from console.voice import overflow, recordings
from console.voice.overflow import OverflowForm
from console.voice.rtpengine import Engine
from console.voice.states import AgentState, set_state
from console.voice.voicemail import Media
from models import Business, Interaction, Lead
from models.agents import CallSettings
from models.recordings import Recording
from models.voice import Call
from tests.factories import sign_in
from tests.served import served
from tests.voice.sip_stack import Caller, SipStack
from tests.voice.test_sip_http import CALLER, LINE, shop_with_secretary
from tests.voice.tones import loudest, sine

# The greeting and the caller's voice: each a tone of its own, to tell them apart in what was heard.
GREETING_HZ = 700
VOICE_HZ = 1100


async def test_an_overflowed_caller_hears_the_greeting_and_leaves_a_message(
    db: Database,
    phone_app: Any,
    tmp_path: Path,
    sip_stack: Callable[[str], SipStack],
    caller: Callable[..., Caller],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FolderStore(tmp_path / "kept")
    phone_app.state.recordings = store
    shop, michal = await shop_with_secretary(db)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        session.add(CallSettings(business_id=shop.id, wait_limit_seconds=0))
        await set_state(session, michal.id, AgentState.OFFLINE, now=now)
        found = await session.get_one(Business, shop.id)
        actor = Actor.command_line(now)
        await overflow.save_overflow(session, actor, found, OverflowForm("voicemail"))
        await recordings.save_settings(
            session,
            actor,
            found,
            store,
            record_calls=False,
            announcement=None,
            greeting=sine(GREETING_HZ, 1.5),
        )
    message = tmp_path / "message.wav"
    message.write_bytes(sine(VOICE_HZ, 3, level=12000))
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with served(phone_app, access_log=True) as url:
        stack = sip_stack(url)
        engine = Engine(f"127.0.0.1:{stack.ng_port}")
        phone_app.state.media = Media(store, engine, stack.recording_dir)
        carrier = caller(stack, CALLER, message)
        carrier.call(LINE)
        await _until(lambda: "Call established" in carrier.output())
        # The caller speaks over the greeting and hangs up at the end of their message.
        await _until(lambda: "terminated" in carrier.output())
        kept = await _message(db)
        assert _kept(tmp_path / "kept")
        transport = httpx.ASGITransport(app=phone_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await sign_in(client, michal.email)
            page = await client.get(f"/leads/{kept.lead_id}")
            played = await client.get(f"/recordings/{kept.id}")
    assert "480 Temporarily" not in carrier.output()
    # The caller heard the greeting (its tone in what baresip received), not their own voice.
    heard = carrier.heard_sound()
    assert loudest(heard, GREETING_HZ) > 2000, "the caller heard no greeting"
    assert loudest(heard, VOICE_HZ) < 500
    # Their BYE ended the call once: the dialog's end, the only event of a voicemail.
    reported = [r for r in caplog.records if "POST /sip/events" in r.getMessage()]
    assert len(reported) == 1, [r.getMessage() for r in reported]
    assert not carrier.hung_up_on()
    assert (kept.kind, played.status_code, played.headers["content-type"]) == (
        "voicemail",
        200,
        "audio/wav",
    )
    assert kept.seconds >= 1 and f'src="/recordings/{kept.id}"' in page.text
    assert loudest(played.content, VOICE_HZ) > 4000  # the caller's voice, not silence
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call))
        lead = await session.get_one(Lead, kept.lead_id)
        interaction = await session.get_one(Interaction, call.interaction_id)  # type: ignore[union-attr]
    assert call is not None and (call.state, call.end_reason) == ("missed", "voicemail")
    assert lead.respond_by is not None and lead.priority == "high"  # its SLA clock runs
    assert interaction.outcome == "no_answer" and interaction.summary in ("Voicemail", "תא קולי")


def _kept(folder: Path) -> bool:
    return any(folder.glob("*/voicemail/*.wav"))


async def _message(db: Database) -> Recording:
    """The message kept: collected after the call ends (rtpengine's file, then the store)."""
    for _ in range(300):
        async with db.transaction(write=False) as session:
            kept: Recording | None = await session.scalar(select(Recording))
        if kept is not None:
            return kept
        await asyncio.sleep(0.1)
    raise AssertionError("no message was kept")


async def _until(done: Callable[[], bool], seconds: float = 30) -> None:
    for _ in range(int(seconds / 0.1)):
        if done():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("never happened")


async def test_a_message_ends_at_the_business_s_longest(
    db: Database,
    phone_app: Any,
    tmp_path: Path,
    sip_stack: Callable[[str], SipStack],
    caller: Callable[..., Caller],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A caller who talks on past the business's longest message: they hear the greeting, and at
    the longest the SIP server hangs up on them (a BYE in their call), the call ends once,
    rtpengine's call is gone, and the kept message is no longer than that."""
    store = await _three_second_voicemail(db, phone_app, tmp_path)
    message = tmp_path / "long-message.wav"
    message.write_bytes(sine(VOICE_HZ, 60))  # a minute: far past the longest
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    async with served(phone_app, access_log=True) as url:
        stack = sip_stack(url)
        engine = Engine(f"127.0.0.1:{stack.ng_port}")
        phone_app.state.media = Media(store, engine, stack.recording_dir)
        carrier = caller(stack, CALLER, message)
        carrier.call(LINE)
        await _until(lambda: "Call established" in carrier.output())
        # At the longest the SIP server hangs up on them: their call is closed from the far end
        # long before their minute is over, and the ended event collects the message.
        await _until(carrier.hung_up_on)
        kept = await _message(db)
        left = await engine.ask({"command": "list"})
    assert carrier.process is not None and carrier.process.poll() is None  # it did not hang up
    assert "/hangup" not in carrier.output()
    assert loudest(carrier.heard_sound(), GREETING_HZ) > 2000, "the caller heard no greeting"
    assert left.get("calls") == []  # rtpengine's call deleted: its recording ended
    log = stack.log_text()
    assert log.count("voicemail at its longest, BYE") == 1
    assert "the voicemail's BYE was not sent" not in log
    assert kept.kind == "voicemail" and 1 <= kept.seconds <= 3, kept.seconds
    said = await store.read(kept.key, 0, kept.size_bytes - 1)
    with wave.open(io.BytesIO(said)) as kept_sound:
        assert kept_sound.getnframes() <= 3 * kept_sound.getframerate()
    assert loudest(said, VOICE_HZ) > 2000  # the caller's voice, cut at the longest
    # The call's end reached Mazkira once: the dialog's end, the only event of a voicemail.
    reported = [r for r in caplog.records if "POST /sip/events" in r.getMessage()]
    assert len(reported) == 1, [r.getMessage() for r in reported]
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call))
    assert call is not None and (call.state, call.end_reason) == ("missed", "voicemail")


async def _three_second_voicemail(db: Database, phone_app: Any, tmp_path: Path) -> FolderStore:
    """The shop's calls go to voicemail at once (its secretary offline), 3 s at most."""
    store = FolderStore(tmp_path / "kept")
    phone_app.state.recordings = store
    shop, michal = await shop_with_secretary(db)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        session.add(CallSettings(business_id=shop.id, wait_limit_seconds=0))
        await set_state(session, michal.id, AgentState.OFFLINE, now=now)
        found = await session.get_one(Business, shop.id)
        actor = Actor.command_line(now)
        await overflow.save_overflow(session, actor, found, OverflowForm("voicemail"))
        saved = await recordings.save_settings(
            session,
            actor,
            found,
            store,
            record_calls=False,
            announcement=None,
            greeting=sine(GREETING_HZ, 1.5),
            voicemail_max_seconds="10",
        )
        saved.voicemail_max_seconds = 3  # below the form's bounds, for a short test
    return store


async def test_the_bye_at_the_longest_goes_through_the_carrier_s_proxy(
    db: Database,
    phone_app: Any,
    tmp_path: Path,
    sip_stack: Callable[[str], SipStack],
) -> None:
    """A carrier whose proxy record-routes the call (a plain UDP socket here, as the proxy and
    the caller's phone both): the BYE at the longest is sent to the proxy with the recorded
    route, to the caller's Contact, in the call's dialog (our 200's To tag as its From tag,
    the caller's as its To tag)."""
    await _three_second_voicemail(db, phone_app, tmp_path)
    async with served(phone_app) as url:
        stack = sip_stack(url)
        engine = Engine(f"127.0.0.1:{stack.ng_port}")
        phone_app.state.media = Media(FolderStore(tmp_path / "kept"), engine, stack.recording_dir)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as proxy:
            proxy.bind(("127.0.0.1", 0))
            proxy.setblocking(False)
            port = proxy.getsockname()[1]
            route = f"<sip:127.0.0.1:{port};lr;carrier=proxy>"
            kamailio = ("127.0.0.1", stack.sip_port)
            sdp = (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {port + 2} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            )
            invite = (
                f"INVITE sip:{LINE}@127.0.0.1:{stack.sip_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKcarrier1;rport\r\n"
                f"Record-Route: {route}\r\nMax-Forwards: 69\r\n"
                f"From: <sip:{CALLER}@127.0.0.1>;tag=caller-tag\r\nTo: <sip:{LINE}@127.0.0.1>\r\n"
                "Call-ID: routed-voicemail\r\nCSeq: 1 INVITE\r\n"
                f"Contact: <sip:{CALLER}@127.0.0.1:{port + 4}>\r\n"
                f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
            )
            loop = asyncio.get_running_loop()
            await loop.sock_sendto(proxy, invite.encode(), kamailio)
            answer = ""
            while not answer.startswith("SIP/2.0 200"):
                answer = (await asyncio.wait_for(loop.sock_recv(proxy, 65535), 30)).decode()
            to_tag = re.search(r"^To:.*;tag=([^;\r]+)", answer, re.M | re.I)
            assert to_tag is not None
            ack = (
                f"ACK sip:voicemail@127.0.0.1:{stack.sip_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKcarrier2;rport\r\n"
                f"Max-Forwards: 69\r\nFrom: <sip:{CALLER}@127.0.0.1>;tag=caller-tag\r\n"
                f"To: <sip:{LINE}@127.0.0.1>;tag={to_tag[1]}\r\nCall-ID: routed-voicemail\r\n"
                "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
            )
            await loop.sock_sendto(proxy, ack.encode(), kamailio)
            # At the longest (3 s) the BYE comes to the proxy (after any 200 sent again).
            bye = answer
            while not bye.startswith("BYE "):
                bye = (await asyncio.wait_for(loop.sock_recv(proxy, 65535), 30)).decode()
            via = re.search(r"^Via: (.*)$", bye, re.M)
            assert via is not None
            ok = (
                f"SIP/2.0 200 OK\r\nVia: {via[1]}\r\n"
                + "".join(
                    f"{line}\r\n"
                    for line in bye.split("\r\n")
                    if line.split(":")[0] in ("From", "To", "Call-ID", "CSeq")
                )
                + "Content-Length: 0\r\n\r\n"
            )
            await loop.sock_sendto(proxy, ok.encode(), kamailio)
    assert bye.startswith(f"BYE sip:{CALLER}@127.0.0.1:{port + 4} SIP/2.0\r\n"), bye
    assert f"\r\nRoute: {route}\r\n" in bye
    assert re.search(rf"^From: <sip:{re.escape(LINE)}@127.0.0.1>;tag={to_tag[1]}\r$", bye, re.M)
    assert re.search(rf"^To: <sip:{re.escape(CALLER)}@127.0.0.1>;tag=caller-tag\r$", bye, re.M)
    assert "\r\nCall-ID: routed-voicemail\r\n" in bye and "\r\nCSeq: 1 BYE\r\n" in bye
