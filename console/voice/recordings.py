"""Call recordings and voicemail messages: kept once in the recordings store
(console/voice/storage.py), listed on their lead, played and downloaded by whoever may see the
lead (anyone else: 404, the same as a recording that does not exist), each play and download
in the audit log, and gone with the lead's retention period or its contact's erasure.

A play is audited once: a player asks again for each part it needs as the listener seeks, so
only a request from the start (no Range, or one starting at byte 0) counts as a new play.

Also each business's recording settings, set by the agency on the business's page: whether its
calls are recorded, an optional announcement the caller hears first, and the voicemail greeting.
The two sounds are checked by their content (WAV, MP3 or Ogg; 415 otherwise) and their size
(413 over `MAX_SOUND_BYTES`), and kept in the same store.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid, NotFound, TooLarge, UnsupportedMedia
from console.base.storage import Missing, Store, new_key
from console.people.audit import Actor, record_audit, record_change
from console.people.tenancy import parse_id, scoped
from models import Business
from models.recordings import DEFAULT_VOICEMAIL_SECONDS, Recording, RecordingSettings

# A greeting or an announcement: about a minute of telephone-quality WAV.
MAX_SOUND_BYTES = 600_000
VOICEMAIL_SECONDS = (10, 600)  # the longest message a business may set: its bounds
# At most this much of a recording per answer to a range request (the player asks for more).
MAX_PART_BYTES = 1 << 20


def sound_type(data: bytes) -> tuple[str, str]:
    """(content type, extension) of an uploaded sound, by its content; 415 otherwise."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav", "wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg", "mp3"
    if data[:4] == b"OggS":
        return "audio/ogg", "ogg"
    raise UnsupportedMedia("Upload a sound file: WAV, MP3 or Ogg.", field="sound")


def wav_seconds(data: bytes) -> int:
    """The length of a WAV (PCM or G.711) from its header; 0 when it cannot tell."""
    try:
        rate = struct.unpack_from("<I", data, 28)[0]  # bytes per second
        at = 12
        while at + 8 <= len(data):
            chunk, size = data[at : at + 4], struct.unpack_from("<I", data, at + 4)[0]
            if chunk == b"data":
                return round(min(size, len(data) - at - 8) / rate) if rate else 0
            at += 8 + size + (size & 1)
    except struct.error:
        return 0
    return 0


# --- the recordings ---------------------------------------------------------------------------


async def keep(
    session: AsyncSession,
    store: Store,
    *,
    business_id: uuid.UUID,
    lead_id: uuid.UUID,
    call_id: uuid.UUID | None,
    kind: str,
    data: bytes,
    now: datetime,
    sip_call_id: str | None = None,
) -> Recording:
    """Store a WAV once and put it on its lead (`sip_call_id`: the call leg it was recorded
    from; a call put through to another secretary has one for each leg)."""
    key = new_key(business_id, kind, "wav")
    await store.put(key, data, "audio/wav")
    recording = Recording(
        business_id=business_id,
        lead_id=lead_id,
        call_id=call_id,
        sip_call_id=sip_call_id,
        kind=kind,
        key=key,
        content_type="audio/wav",
        size_bytes=len(data),
        seconds=wav_seconds(data),
        created_at=now,
    )
    session.add(recording)
    await session.flush()
    return recording


async def of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[Recording]:
    statement = select(Recording).where(Recording.lead_id == lead_id).order_by(Recording.created_at)
    return list((await session.scalars(statement)).all())


@dataclass(frozen=True)
class Part:
    recording: Recording
    size: int
    start: int
    end: int  # inclusive
    partial: bool  # answer 206 with Content-Range


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """A single `bytes=a-b`, `bytes=a-` or `bytes=-n` within the size; anything else is
    ignored and the whole is served (RFC 9110 lets a server do so)."""
    if not header.startswith("bytes=") or "," in header or size == 0:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start < 0 or start > end or start >= size:
        return None
    return start, end


async def open_for(
    session: AsyncSession,
    viewer: Actor,
    store: Store | None,
    recording_id: str,
    *,
    range_header: str,
    download: bool,
) -> Part:
    """The part of a recording asked for, for someone who may see its lead (404 otherwise,
    and when it is gone from the store); a play or download from the start is audited."""
    statement = scoped(
        select(Recording).where(Recording.id == parse_id(recording_id)),
        viewer.person,
        Recording.business_id,
    )
    recording = await session.scalar(statement)
    if recording is None or store is None:
        raise NotFound("Not found.")
    try:
        size = await store.size(recording.key)
    except Missing:
        raise NotFound("Not found.") from None
    asked = parse_range(range_header, size)
    start, end = asked or (0, size - 1)
    if asked is not None:
        end = min(end, start + MAX_PART_BYTES - 1)
    if start == 0:
        await record_audit(
            session,
            action="recording.downloaded" if download else "recording.played",
            now=viewer.now,
            actor=viewer.user,
            business_id=recording.business_id,
            subject_type="recording",
            subject_id=recording.id,
            address=viewer.address,
            lead_id=str(recording.lead_id),
            kind=recording.kind,
        )
    return Part(recording, size, start, end, asked is not None)


# --- a business's settings -----------------------------------------------------------------------


async def settings_of(session: AsyncSession, business_id: uuid.UUID) -> RecordingSettings:
    found = await session.get(RecordingSettings, business_id)
    return found or RecordingSettings(
        business_id=business_id,
        record_calls=False,
        voicemail_max_seconds=DEFAULT_VOICEMAIL_SECONDS,
    )


def _checked_sound(data: bytes | None) -> tuple[str, str] | None:
    if not data:
        return None
    if len(data) > MAX_SOUND_BYTES:
        raise TooLarge(
            "The file is larger than %(kb)s KB.", field="sound", kb=MAX_SOUND_BYTES // 1000
        )
    return sound_type(data)


async def save_settings(
    session: AsyncSession,
    actor: Actor,
    business: Business,
    store: Store | None,
    *,
    record_calls: bool,
    announcement: bytes | None,
    greeting: bytes | None,
    remove_announcement: bool = False,
    voicemail_max_seconds: str | int | None = None,  # None: as it was
) -> RecordingSettings:
    """Keep the settings and any new sound (audited). Refused: a sound that is no sound (415)
    or too large (413), naming its field; recording or a sound with no store set, or a
    voicemail's longest out of its bounds (422)."""
    longest = None if voicemail_max_seconds is None else _voicemail_seconds(voicemail_max_seconds)
    checked: dict[str, tuple[bytes, tuple[str, str]]] = {}
    for field, data in (("announcement", announcement), ("greeting", greeting)):
        try:
            kind = _checked_sound(data)
        except (TooLarge, UnsupportedMedia) as refused:
            refused.field = field
            raise
        if kind is not None and data:
            checked[field] = (data, kind)
    if store is None and (record_calls or checked):
        raise Invalid(
            "Recordings have nowhere to be kept: set RECORDINGS_DIR or RECORDINGS_S3_BUCKET.",
            field="record_calls",
        )
    row = await session.get(RecordingSettings, business.id)
    if row is None:
        row = RecordingSettings(business_id=business.id, record_calls=False)
        session.add(row)
    row.record_calls = record_calls
    row.voicemail_max_seconds = longest or row.voicemail_max_seconds or DEFAULT_VOICEMAIL_SECONDS
    for field, (data, (content_type, extension)) in checked.items():
        assert store is not None
        key = new_key(business.id, field, extension)
        await store.put(key, data, content_type)
        old = getattr(row, f"{field}_key")
        if old:
            await store.delete(old)
        setattr(row, f"{field}_key", key)
    if remove_announcement and "announcement" not in checked and row.announcement_key:
        if store is not None:
            await store.delete(row.announcement_key)
        row.announcement_key = None
    await session.flush()
    await record_change(
        session,
        actor,
        "business.recording",
        business,
        record_calls=record_calls,
        announcement=bool(row.announcement_key),
        greeting=bool(row.greeting_key),
        voicemail_max_seconds=row.voicemail_max_seconds,
    )
    return row


def _voicemail_seconds(raw: str | int) -> int:
    low, high = VOICEMAIL_SECONDS
    text = str(raw).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise Invalid(
            "Give a whole number of seconds from %(low)s to %(high)s.",
            field="voicemail_max_seconds",
            low=low,
            high=high,
        )
    return int(text)


async def sound_of(store: Store | None, key: str | None) -> bytes | None:
    """A business's announcement or greeting, as kept; None when there is none."""
    if store is None or not key:
        return None
    try:
        size = await store.size(key)
        return await store.read(key, 0, size - 1)
    except Missing:
        return None
