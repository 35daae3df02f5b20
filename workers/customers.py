"""Jobs over the customer records: A/B/C classes, and the retention period of closed leads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.customer_classes import classify_all
from console.privacy import anonymise_expired_leads


async def classify_customers(ctx: dict[str, Any]) -> int:
    """Recompute every business's A/B/C classes from won deals (locked classes stay)."""
    async with ctx["db"].transaction() as session:
        return await classify_all(session)


async def anonymise_leads(ctx: dict[str, Any]) -> int:
    """Wipe the notes of closed leads past their business's retention period (once each)."""
    async with ctx["db"].transaction() as session:
        return await anonymise_expired_leads(session, now=datetime.now(UTC))
