"""rtpengine's pcaps that never became a recording (Mazkira stopped between the hang-up and the
import, or the call has no lead): the periodic job imports the pcap of an answered call onto
its lead once the grace period is over, removes those it cannot keep anywhere, leaves a fresh
one alone (a call still recording), and counts what it did."""

from __future__ import annotations

import os
import struct
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from console.base.config import Settings
from console.base.db import Database
from console.base.storage import FolderStore
from console.channels.lines import add_line
from console.intake import arrivals
from console.intake.arrivals import NewLead
from models.recordings import Recording
from models.voice import Call, CallTransfer
from tests.factories import make_business
from workers.customers import sweep_recordings
from workers.settings import PERIODIC


def _pcap(seconds: float) -> bytes:
    """A pcap (raw IP) of one PCMU flow: `seconds` of a loud square wave, 20 ms a packet."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)]
    payload = (b"\x00" * 8 + b"\x80" * 8) * 10  # 160 µ-law samples: loud, then quiet
    for n in range(int(seconds * 50)):
        rtp = struct.pack("!BBHII", 0x80, 0, n, n * 160, 1234) + payload
        udp = struct.pack("!HHHH", 30000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 2])) + udp  # fmt: skip
        at = 1_700_000_000 + n * 0.02
        out.append(struct.pack("<IIII", int(at), int(at % 1 * 1e6), len(ip), len(ip)) + ip)
    return b"".join(out)


def _left_behind(folder: Path, call_id: str, *, aged: bool = True) -> Path:
    pcaps, metadata = folder / "pcaps", folder / "metadata"
    pcaps.mkdir(parents=True, exist_ok=True)
    metadata.mkdir(parents=True, exist_ok=True)
    pcap = pcaps / f"{call_id}-{uuid.uuid4().hex[:16]}.pcap"
    pcap.write_bytes(_pcap(2))
    meta = metadata / f"rtpengine-meta-{pcap.stem}.txt"
    meta.write_text(f"{pcap}\n")
    if aged:  # untouched for an hour
        old = time.time() - 3600
        for path in (pcap, meta):
            os.utime(path, (old, old))
    return pcap


async def test_pcaps_left_behind_are_imported_or_removed(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    assert any(job.function is sweep_recordings for job in PERIODIC)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        shop = await make_business(session)
        await add_line(session, shop, "phone", "+97235551234")
        lead = await arrivals.create_lead(
            session, None, NewLead(str(shop.id), phone="+972542345678"), now=now, business=shop
        )
        answered = Call(business_id=shop.id, lead_id=lead.id, sip_call_id="answered-1@carrier",
                        direction="in", state="ended", arrived_at=now, answered_at=now,
                        ended_at=now, end_reason="caller_hangup")  # fmt: skip
        no_lead = Call(business_id=shop.id, lead_id=None, sip_call_id="nolead-2@carrier",
                       direction="in", state="ended", arrived_at=now, answered_at=now,
                       ended_at=now, end_reason="caller_hangup")  # fmt: skip
        session.add_all([answered, no_lead])
    folder = tmp_path / "rtpengine"
    kept_folder = tmp_path / "kept"
    imported = _left_behind(folder, "answered-1@carrier")
    lost = _left_behind(folder, "nolead-2@carrier")
    stranger = _left_behind(folder, "no-such-call@carrier")
    fresh = _left_behind(folder, "answered-1@carrier", aged=False)  # still being written
    job_settings = replace(
        settings, rtpengine_ng="127.0.0.1:9", rtpengine_recording_dir=str(folder)
    )
    ctx: dict[str, Any] = {
        "db": db,
        "settings": job_settings,
        "recordings": FolderStore(kept_folder),
    }

    assert await sweep_recordings(ctx) == 3
    async with db.transaction(write=False) as session:
        kept = (await session.scalars(select(Recording))).all()
    assert [(r.lead_id, r.call_id, r.kind) for r in kept] == [(lead.id, answered.id, "call")]
    assert kept[0].seconds == 2 and any(kept_folder.glob("*/call/*.wav"))
    for gone in (imported, lost, stranger):
        assert not gone.exists()
    assert not list((folder / "metadata").glob(f"rtpengine-meta-{imported.stem}*"))
    assert fresh.exists()  # within the grace period: left alone
    # Run again (a retry): nothing more to do, and the call is kept once.
    assert await sweep_recordings(ctx) == 0
    # Without rtpengine's folder there is nothing to sweep.
    assert await sweep_recordings({"db": db, "settings": settings, "recordings": None}) == 0


@pytest.mark.parametrize(("target", "number"), [("secretary", ""), ("owner", "+972527654321")])
async def test_a_call_put_through_keeps_a_recording_per_leg(
    db: Database, settings: Settings, tmp_path: Path, target: str, number: str
) -> None:
    """The caller's leg to another secretary, or to a number through the trunk (the owner's
    phone), is recorded as the call's second leg: its pcap left behind is imported onto the
    call's lead beside the first leg's recording (one per leg, however often swept); that of a
    leg never answered is removed."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        shop = await make_business(session)
        lead = await arrivals.create_lead(
            session, None, NewLead(str(shop.id), phone="+972542345678"), now=now, business=shop
        )
        call = Call(business_id=shop.id, lead_id=lead.id, sip_call_id="first-1@carrier",
                    direction="in", state="ended", arrived_at=now, answered_at=now,
                    ended_at=now, end_reason="caller_hangup")  # fmt: skip
        session.add(call)
        await session.flush()
        for token, leg, answered in (("a1", "leg-2@carrier", now), ("b2", "rang-3@carrier", None)):
            session.add(
                CallTransfer(
                    business_id=shop.id,
                    call_id=call.id,
                    lead_id=lead.id,
                    token=token,
                    kind="blind",
                    target=target,
                    number=number,
                    requested_at=now,
                    leg_call_id=leg,
                    leg_started_at=now,
                    answered_at=answered,
                    ended_at=now,
                    outcome="connected" if answered else "failed",
                )
            )
    folder, kept_folder = tmp_path / "rtpengine", tmp_path / "kept"
    ctx: dict[str, Any] = {
        "db": db,
        "settings": replace(
            settings, rtpengine_ng="127.0.0.1:9", rtpengine_recording_dir=str(folder)
        ),
        "recordings": FolderStore(kept_folder),
    }
    _left_behind(folder, "first-1@carrier")
    assert await sweep_recordings(ctx) == 1  # the first leg's, kept on the lead
    second = _left_behind(folder, "leg-2@carrier")
    never = _left_behind(folder, "rang-3@carrier")
    assert await sweep_recordings(ctx) == 2
    async with db.transaction(write=False) as session:
        kept = (await session.scalars(select(Recording).order_by(Recording.created_at))).all()
    assert sorted((r.sip_call_id, r.lead_id, r.call_id, r.kind) for r in kept) == [
        ("first-1@carrier", lead.id, call.id, "call"),
        ("leg-2@carrier", lead.id, call.id, "call"),
    ]
    assert not second.exists() and not never.exists()
    assert len(list(kept_folder.glob("*/call/*.wav"))) == 2
    _left_behind(folder, "leg-2@carrier")  # the same leg again: kept once
    assert await sweep_recordings(ctx) == 1
    async with db.transaction(write=False) as session:
        assert len((await session.scalars(select(Recording))).all()) == 2
