"""Voicemail and call recordings, as the SIP server and rtpengine make them.

Voicemail: when a call overflows and the business's rule says voicemail, the call is already a
missed-call lead with its SLA clock (console/voice/calls.py); the SIP server then asks
`POST /sip/voicemail` with the caller's SDP. Mazkira has rtpengine answer it, recording, and play
the business's greeting (console/voice/rtpengine.py), and the SIP server answers the caller with
rtpengine's SDP. A message has a longest (the business's `voicemail_max_seconds`, 120 s by
default): the route answer says `max=N`, the SIP server's dialog times out then, hangs up on
the caller (a BYE of its own: it answered them) and reports "ended" (so the message is collected
and rtpengine stops recording), and the kept message is cut there whatever happened on the
way. When the caller hangs up (the "ended" event), or the dialog times out, the message is
collected: the call deleted in rtpengine (its recording is then complete; the SIP server leaves
that to Mazkira), its pcap read into a WAV (console/voice/pcap_audio.py), kept once in the
recordings store and put on the lead (console/voice/recordings.py), whose consoles are told.
Refused (409: no greeting, no store, no rtpengine; the call not an overflow), the SIP server
gives the caller the 480 as before.

Recordings: a business that records its calls has `record=1` in the ring answer, so Kamailio has
rtpengine record the call it bridges; when it is answered the announcement, if any, is played to
the caller, the call's media blocked meanwhile (by Kamailio as it relays her answer, lifted here:
see `announce`); when it ends the recording is
collected as a voicemail is. A call put through to another secretary or to a number
(console/voice/transfers.py) has two legs, each recorded and collected when it ends: the first
secretary's (the call's own Call-ID) and the caller's leg to her or to him (the transfer's
`leg_call_id`), both kept on the call's lead, one recording per leg (`recordings.sip_call_id`).

Collecting runs after the SIP server's request is answered (it waits for rtpengine's file), and
once per leg: a second "ended" (the dialog's end after the BYE) finds the recording there.
"""

from __future__ import annotations

import asyncio
import io
import logging
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import literal, select

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Conflict, NotFound
from console.base.i18n import gettext, using_locale
from console.base.storage import Store
from console.live import events
from console.voice import recordings, transfers
from console.voice.pcap_audio import finished_pcap, forget_pcap, wav_of_pcap
from console.voice.rtpengine import Engine, EngineError
from models import Business, Interaction
from models.recordings import DEFAULT_VOICEMAIL_SECONDS, Recording, RecordingSettings
from models.voice import Call, CallTransfer

log = logging.getLogger(__name__)

# How long to wait for rtpengine to close a recording after the call is deleted (seconds).
COLLECT_SECONDS = 10
MAX_SDP = 8000


@dataclass(frozen=True)
class Media:
    """What voicemail and recording need: the store, rtpengine, and its recordings' folder."""

    store: Store
    engine: Engine
    recording_dir: Path

    @classmethod
    def of(cls, settings: Settings, store: Store | None) -> Media | None:
        if store is None or not settings.rtpengine_ng or not settings.rtpengine_recording_dir:
            return None
        return cls(store, Engine(settings.rtpengine_ng), Path(settings.rtpengine_recording_dir))


async def _call(db: Database, call_id: str) -> Call:
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
    if call is None:
        raise NotFound("No call has this id.")
    return call


async def answer(db: Database, media: Media | None, call_id: str, from_tag: str, sdp: str) -> str:
    """The SDP the SIP server answers an overflowed caller with, their greeting playing."""
    call = await _call(db, call_id)
    if media is None:
        raise Conflict("Voicemail needs a recordings store and rtpengine.")
    if call.direction != "in" or call.state != "missed" or call.end_reason != "overflow":
        raise Conflict("This call is not one for voicemail.")
    if not sdp.strip() or len(sdp) > MAX_SDP or not from_tag:
        raise Conflict("This call is not one for voicemail.")
    async with db.transaction(write=False) as session:
        settings = await recordings.settings_of(session, call.business_id)
    greeting = await recordings.sound_of(media.store, settings.greeting_key)
    if greeting is None:
        raise Conflict("The business has no voicemail greeting.")
    try:
        answered = await media.engine.answer_voicemail(call_id, from_tag, sdp)
        await media.engine.play(call_id, from_tag, greeting)
    except EngineError as error:
        log.warning("voicemail for %s: %s", call_id, error)
        raise Conflict("rtpengine did not take the call.") from None
    async with db.transaction() as session:
        row = await session.get_one(Call, call.id)
        row.end_reason = "voicemail"
    return answered


async def announce(db: Database, media: Media | None, call_id: str, from_tag: str) -> None:
    """A recorded call just answered: its business's announcement to the caller, if any.

    rtpengine plays beside what it forwards (two streams at once reach the caller, and a phone
    keeps one of them: the secretary's), so nothing is forwarded until the announcement is over.
    Kamailio blocked the call's media before relaying her answer (the route answer said
    `announce=1`); here it is lifted once the announcement has played, and at once whenever it
    cannot be played, so a blocked call is never left silent by Mazkira."""
    if media is None:
        return
    async with db.transaction(write=False) as session:
        found = (
            await session.execute(
                select(RecordingSettings.record_calls, RecordingSettings.announcement_key)
                .join(Call, Call.business_id == RecordingSettings.business_id)
                .where(Call.sip_call_id == call_id)
            )
        ).first()
    if found is None:
        return  # a business that never set recording up: nothing was blocked
    # Unblocked below even when it no longer records or has no announcement: the settings may
    # have changed since Kamailio was told to block.
    try:
        key = found.announcement_key if found.record_calls and from_tag else None
        sound = await recordings.sound_of(media.store, key)
        if sound:
            played = await media.engine.play(call_id, from_tag, sound)
            await asyncio.sleep(played / 1000)
    except EngineError as error:
        log.warning("announcement for %s: %s", call_id, error)
    finally:
        try:
            await media.engine.unblock_media(call_id)
        except EngineError as error:
            log.warning("unblocking %s after its announcement: %s", call_id, error)


async def due(db: Database, call_id: str) -> str | None:
    """After an "ended": the kind of recording this call (or the caller's leg to another
    secretary or to a number, its second recording) has to collect ("voicemail", "call"), or
    None (not recorded, or collected already)."""
    async with db.transaction(write=False) as session:
        found = (
            await session.execute(
                select(Call.end_reason, Call.answered_at, RecordingSettings.record_calls)
                .outerjoin(RecordingSettings, RecordingSettings.business_id == Call.business_id)
                .where(Call.sip_call_id == call_id)
            )
        ).first()
        if found is None:
            found = (
                await session.execute(
                    select(
                        literal(None).label("end_reason"),
                        CallTransfer.answered_at,
                        RecordingSettings.record_calls,
                    )
                    .outerjoin(
                        RecordingSettings,
                        RecordingSettings.business_id == CallTransfer.business_id,
                    )
                    .where(CallTransfer.leg_call_id == call_id, CallTransfer.target != "business")
                )
            ).first()
        if found is None:
            return None
        if found.end_reason == "voicemail":
            kind = "voicemail"
        elif found.answered_at is not None and found.record_calls:
            kind = "call"
        else:
            return None
        kept = await session.scalar(select(Recording.id).where(Recording.sip_call_id == call_id))
    return None if kept else kind


async def collect(db: Database, media: Media, call_id: str, kind: str, *, now: datetime) -> None:
    """The call's recording, from rtpengine's pcap to the store and its lead (see above)."""
    await media.engine.delete(call_id)
    pcap = None
    for _ in range(COLLECT_SECONDS * 10):
        pcap = finished_pcap(media.recording_dir, call_id)
        if pcap is not None:
            break
        await asyncio.sleep(0.1)
    if pcap is None:
        log.warning("the recording of call %s never finished", call_id)
        return  # the periodic sweep (console/voice/recording_sweep.py) finds it later
    await keep_pcap(db, media, call_id, kind, pcap, now=now)


async def keep_pcap(
    db: Database, media: Media, call_id: str, kind: str, pcap: Path, *, now: datetime
) -> bool:
    """A finished pcap of this call made its recording, kept once on its lead; the pcap and its
    metadata removed once kept. False when there is nothing to keep it on (no such call, or no
    lead: the pcap stays for the sweep to remove)."""
    data = await asyncio.to_thread(pcap.read_bytes)
    sound = await asyncio.to_thread(wav_of_pcap, data)
    if sound and kind == "voicemail":
        async with db.transaction(write=False) as session:
            longest = await session.scalar(
                select(RecordingSettings.voicemail_max_seconds)
                .join(Call, Call.business_id == RecordingSettings.business_id)
                .where(Call.sip_call_id == call_id)
            )
        sound = cut_wav(sound, longest or DEFAULT_VOICEMAIL_SECONDS)
    async with db.transaction() as session:
        call = await session.scalar(
            select(Call).where(Call.sip_call_id == call_id).with_for_update()
        )
        if call is None and (leg := await transfers.recorded_leg(session, call_id)) is not None:
            call = await session.get(Call, leg.call_id, with_for_update=True)  # its second leg
        if call is None or call.lead_id is None:
            return False
        if await session.scalar(select(Recording.id).where(Recording.sip_call_id == call_id)):
            return False  # collected by a twin
        if sound:
            await recordings.keep(
                session,
                media.store,
                business_id=call.business_id,
                lead_id=call.lead_id,
                call_id=call.id,
                kind=kind,
                data=sound,
                now=now,
                sip_call_id=call_id,
            )
        if kind == "voicemail" and call.interaction_id is not None:
            business = await session.get_one(Business, call.business_id)
            interaction = await session.get_one(Interaction, call.interaction_id)
            with using_locale(business.locale):
                interaction.summary = gettext("Voicemail")
            interaction.updated_at = now
        await events.record(session, call.business_id, "lead.updated", at=now, lead_id=call.lead_id)
    await asyncio.to_thread(forget_pcap, media.recording_dir, pcap)
    return True


def cut_wav(sound: bytes, seconds: int) -> bytes:
    """The WAV no longer than `seconds` (the same WAV when it is not)."""
    with wave.open(io.BytesIO(sound)) as found:
        params = found.getparams()
        frames = found.readframes(min(found.getnframes(), seconds * found.getframerate()))
    if len(frames) // (params.sampwidth * params.nchannels) >= params.nframes:
        return sound
    out = io.BytesIO()
    with wave.open(out, "wb") as cut:
        cut.setparams(params)
        cut.writeframes(frames)
    return out.getvalue()
