"""Jobs over the customer records: A/B/C classes, the retention period of closed leads, and
the call recordings rtpengine left behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from console.contacts.customer_classes import classify_business
from console.contacts.privacy import anonymise_expired_leads
from console.voice.recording_sweep import sweep_orphan_recordings
from console.voice.voicemail import Media
from models import Business


async def classify_customers(ctx: dict[str, Any]) -> int:
    """Recompute every business's A/B/C classes from won deals (locked classes stay).

    One short transaction per business: at a million leads the whole run takes seconds, and on
    SQLite one long writing transaction would hold back the SLA sweep's alerts that long."""
    async with ctx["db"].transaction(write=False) as session:
        business_ids = list(await session.scalars(select(Business.id)))
    changed = 0
    for business_id in business_ids:
        async with ctx["db"].transaction() as session:
            changed += await classify_business(session, business_id)
        await asyncio.sleep(0)  # the SLA sweep and the requests get their turn
    return changed


async def anonymise_leads(ctx: dict[str, Any]) -> int:
    """Wipe the notes of closed leads past their business's retention period (once each)."""
    async with ctx["db"].transaction() as session:
        return await anonymise_expired_leads(
            session, now=datetime.now(UTC), store=ctx.get("recordings")
        )


async def sweep_recordings(ctx: dict[str, Any]) -> int:
    """rtpengine's pcaps that never became a recording: imported or removed after a grace
    period (console/voice/recording_sweep.py); nothing to do without rtpengine's folder."""
    media = Media.of(ctx["settings"], ctx.get("recordings"))
    if media is None:
        return 0
    swept = await sweep_orphan_recordings(ctx["db"], media, now=datetime.now(UTC))
    return swept.imported + swept.removed
