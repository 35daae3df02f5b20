"""rtpengine's pcaps that never became a recording, found and dealt with by a periodic job.

A recorded call's pcap is normally read into its recording right after the SIP server's
"ended" event (console/voice/voicemail.py). One is left behind when Mazkira stopped between the
hang-up and the import (a crash, a deploy), when the event never came, or when the call has no
lead to keep it on. The sweep looks at every pcap in rtpengine's recording folder untouched for
the grace period (so a call still recording, or one being collected now, is left alone): the
pcap of a call that is over, answered or a voicemail, with a lead and no recording yet, is
imported as `collect` would have (and so is that of a caller's leg to another secretary or to a
number, answered and over: the call's second recording); any other (no such call, no lead, not
one to keep, or kept already) is removed with its metadata. It counts and logs what it did.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database
from console.voice import transfers
from console.voice.pcap_audio import forget_pcap
from console.voice.voicemail import Media, keep_pcap
from models.recordings import Recording
from models.voice import Call

log = logging.getLogger(__name__)

GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class Swept:
    imported: int = 0
    removed: int = 0


def _aged_pcaps(recording_dir: Path, before: datetime) -> list[Path]:
    found = []
    for pcap in sorted((recording_dir / "pcaps").glob("*.pcap")):
        try:
            if pcap.stat().st_mtime < before.timestamp():
                found.append(pcap)
        except FileNotFoundError:
            continue  # collected meanwhile
    return found


def _call_id_of(pcap: Path) -> str:
    """rtpengine names a call's pcap `<Call-ID>-<its own suffix>.pcap`."""
    return pcap.stem.rsplit("-", 1)[0]


async def _kind_to_keep(session: AsyncSession, call_id: str) -> str | None:
    """What a pcap left behind is to become: "voicemail", "call", or None (nothing to keep)."""
    found = (
        await session.execute(
            select(Call.lead_id, Call.answered_at, Call.ended_at, Call.end_reason).where(
                Call.sip_call_id == call_id
            )
        )
    ).first()
    if found is not None:
        lead_id, answered_at, ended_at, reason = found
    else:  # the caller's leg to another secretary or a number: the call's second recording
        leg = await transfers.recorded_leg(session, call_id)
        if leg is None:
            return None
        lead_id, answered_at, ended_at, reason = leg.lead_id, leg.answered_at, leg.ended_at, None
    if lead_id is None:
        return None
    if await session.scalar(select(Recording.id).where(Recording.sip_call_id == call_id)):
        return None  # kept already
    if reason == "voicemail":
        return "voicemail"
    if answered_at is not None and ended_at is not None:
        return "call"
    return None


async def sweep_orphan_recordings(
    db: Database, media: Media, *, now: datetime, grace: timedelta = GRACE
) -> Swept:
    """Import or remove the pcaps left behind (see above); one read per pcap found."""
    imported = removed = 0
    for pcap in await asyncio.to_thread(_aged_pcaps, media.recording_dir, now - grace):
        call_id = _call_id_of(pcap)
        async with db.transaction(write=False) as session:
            kind = await _kind_to_keep(session, call_id)
        if kind and await keep_pcap(db, media, call_id, kind, pcap, now=now):
            imported += 1
            log.info("recording of call %s imported from a pcap left behind", call_id)
            continue
        await asyncio.to_thread(forget_pcap, media.recording_dir, pcap)
        removed += 1
        log.info("pcap %s removed: no recording to make of it", pcap.name)
    if imported or removed:
        log.info("orphan recordings: %s imported, %s removed", imported, removed)
    return Swept(imported, removed)
