"""Call recordings and voicemail (issue 22, point 2): kept once in the recordings store (a
folder, or an S3-compatible bucket: moto's server on a free port speaks the real API), played on
the lead page and in the owner's portal in parts (Range), downloaded, 404 to anyone who may not
see the lead, every play and download in the audit log, gone with the retention period and with
the contact's erasure; the admin's settings refuse a file that is no sound (415) or too large
(413) in place."""

from __future__ import annotations

import hashlib
import io
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from console.base.config import Settings
from console.base.db import Database
from console.base.storage import Missing, store_of
from console.contacts.privacy import anonymise_expired_leads, erase_contact
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.voice import recordings
from models import AuditEvent, Business, Lead
from models.recordings import Recording, RecordingSettings
from tests.conftest import SECRET
from tests.factories import csrf_token, make_agency, make_user, sign_in

HTMX = {"HX-Request": "true"}


def a_wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(range(256)) * int(seconds * 16000 / 256))
    return out.getvalue()


@pytest.fixture
def store_settings(backend: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A folder beside SQLite (the embedded mode), a bucket beside PostgreSQL (for scale)."""
    if backend == "sqlite":
        yield {"recordings_dir": str(tmp_path / "recordings")}
        return
    from moto.server import ThreadedMotoServer

    from console.demo.sip_stack import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        s3: dict[str, Any] = {
            "recordings_s3_bucket": "calls",
            "recordings_s3_endpoint": f"http://127.0.0.1:{port}",
            "recordings_s3_key_id": "test",
            "recordings_s3_secret": "test",
        }
        store = store_of(Settings(database_url="sqlite://", secret_key=SECRET, **s3))
        store.client.create_bucket(Bucket="calls")  # type: ignore[union-attr]
        yield s3
    finally:
        server.stop()


@pytest.fixture
def settings(db: Database, store_settings: dict[str, Any]) -> Settings:
    return Settings(database_url=db.url, secret_key=SECRET, **store_settings)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


async def audited(db: Database, action: str) -> int:
    async with db.transaction(write=False) as session:
        return (
            await session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
            )
            or 0
        )


async def test_a_recording_is_kept_once_played_in_parts_and_gone_with_its_contact(
    db: Database, client: httpx.AsyncClient, app: object, settings: Settings
) -> None:
    store = app.state.recordings  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    async with db.transaction() as session:
        agency = await make_agency(session)
        admin = await make_user(session, "admin")
        stranger = await make_user(session, "secretary", agency.b)
        lead = await arrivals.create_lead(
            session,
            None,
            NewLead(str(agency.a.id), phone="+972542345678"),
            now=now,
            business=agency.a,
        )
        sound = a_wav(70)
        kept = await recordings.keep(
            session,
            store,
            business_id=agency.a.id,
            lead_id=lead.id,
            call_id=None,
            kind="call",
            data=sound,
            now=now,
        )
    assert kept.seconds == 70 and await store.size(kept.key) == len(sound)

    # The admin: recording on, a greeting; a text file is no sound (415), a big one 413.
    await sign_in(client, admin.email)
    path = f"/agency/businesses/{agency.a.id}"
    token = await csrf_token(client, path)
    form = {"csrf_token": token, "record_calls": "on"}
    refused = await client.post(
        f"{path}/recording",
        data=form,
        files={"greeting": ("g.txt", b"hello", "text/plain")},
        headers=HTMX,
    )
    assert refused.status_code == 415 and 'id="recording-greeting-error"' in refused.text
    assert "<h1>" not in refused.text and 'name="record_calls" value="on" checked' in refused.text
    big = b"RIFF\0\0\0\0WAVE" + bytes(recordings.MAX_SOUND_BYTES)
    refused = await client.post(
        f"{path}/recording",
        data=form,
        files={"greeting": ("g.wav", big, "audio/wav")},
        headers=HTMX,
    )
    assert refused.status_code == 413 and 'id="recording-greeting-error"' in refused.text
    # The longest voicemail message: out of its bounds, refused beside it with what was typed.
    for typed in ("5", "601", "two minutes"):
        refused = await client.post(
            f"{path}/recording", data={**form, "voicemail_max_seconds": typed}, headers=HTMX
        )
        assert refused.status_code == 422, typed
        assert 'id="recording-voicemail_max_seconds-error"' in refused.text
        assert 'name="voicemail_max_seconds"' in refused.text and f'value="{typed}"' in refused.text
    async with db.transaction(write=False) as session:
        assert await session.get(RecordingSettings, agency.a.id) is None  # nothing half-written
    form["voicemail_max_seconds"] = "90"
    saved = await client.post(
        f"{path}/recording",
        data=form,
        files={"greeting": ("g.wav", a_wav(2), "audio/wav")},
        headers=HTMX,
    )
    assert saved.status_code == 200 and 'class="saved"' in saved.text
    async with db.transaction(write=False) as session:
        row = await session.get_one(RecordingSettings, agency.a.id)
    assert row.record_calls and row.greeting_key and row.announcement_key is None
    assert row.voicemail_max_seconds == 90 and 'value="90"' in saved.text
    assert digest(await recordings.sound_of(store, row.greeting_key) or b"") == digest(a_wav(2))
    client.cookies.clear()

    # The secretary: on the lead page, played from the start (audited once), then a seek.
    await sign_in(client, agency.secretary.email)
    page = await client.get(f"/leads/{lead.id}")
    assert f'src="/recordings/{kept.id}"' in page.text
    whole = await client.get(f"/recordings/{kept.id}")
    assert whole.status_code == 200 and digest(whole.content) == digest(sound)
    assert whole.headers["accept-ranges"] == "bytes"
    first = await client.get(f"/recordings/{kept.id}", headers={"Range": "bytes=0-"})
    part = recordings.MAX_PART_BYTES  # a part at a time: the player asks for the rest
    assert first.status_code == 206 and digest(first.content) == digest(sound[:part])
    assert first.headers["content-range"] == f"bytes 0-{part - 1}/{len(sound)}"
    seek = await client.get(f"/recordings/{kept.id}", headers={"Range": "bytes=100000-100099"})
    assert seek.status_code == 206 and digest(seek.content) == digest(sound[100000:100100])
    assert seek.headers["content-range"] == f"bytes 100000-100099/{len(sound)}"
    tail = await client.get(f"/recordings/{kept.id}", headers={"Range": "bytes=-10"})
    assert digest(tail.content) == digest(sound[-10:])
    download = await client.get(f"/recordings/{kept.id}?download=1")
    assert download.headers["content-disposition"].startswith("attachment;")
    assert (await audited(db, "recording.played"), await audited(db, "recording.downloaded")) == (
        2,
        1,
    )
    client.cookies.clear()

    # Another business's secretary, the other owner: 404. The lead's owner: in his portal.
    for outsider in (stranger, agency.owner_b):
        await sign_in(client, outsider.email)
        assert (await client.get(f"/recordings/{kept.id}")).status_code == 404
        client.cookies.clear()
    await sign_in(client, agency.owner_a.email)
    assert f'src="/recordings/{kept.id}"' in (await client.get(f"/portal/leads/{lead.id}")).text
    assert digest((await client.get(f"/recordings/{kept.id}")).content) == digest(sound)
    assert (await client.get("/recordings/not-an-id")).status_code == 404
    client.cookies.clear()

    # Erasing the contact takes the sound from the store; the link is then 404.
    async with db.transaction() as session:
        await erase_contact(session, agency.secretary, str(lead.contact_id), now=now, store=store)
    with pytest.raises(Missing):
        await store.size(kept.key)
    await sign_in(client, agency.secretary.email)
    assert (await client.get(f"/recordings/{kept.id}")).status_code == 404


async def test_the_retention_period_takes_closed_leads_recordings(
    db: Database, app: object
) -> None:
    store = app.state.recordings  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    async with db.transaction() as session:
        agency = await make_agency(session)
        old, fresh = [
            await arrivals.create_lead(
                session,
                None,
                NewLead(str(agency.a.id), phone=phone),
                now=now,
                business=agency.a,
            )
            for phone in ("+972542345678", "+972527654321")
        ]
        kept = [
            await recordings.keep(
                session,
                store,
                business_id=agency.a.id,
                lead_id=lead.id,
                call_id=None,
                kind="voicemail",
                data=a_wav(1),
                now=now,
            )
            for lead in (old, fresh)
        ]
        (await session.get_one(Lead, old.id)).closed_at = now - timedelta(days=40)
        (await session.get_one(Business, agency.a.id)).retention_days = 30
    async with db.transaction() as session:
        assert await anonymise_expired_leads(session, now=now, store=store) == 1
    with pytest.raises(Missing):
        await store.size(kept[0].key)
    assert await store.size(kept[1].key) > 0
    async with db.transaction(write=False) as session:
        left = list(await session.scalars(select(Recording.lead_id)))
    assert left == [fresh.id]
