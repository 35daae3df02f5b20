"""Appointment reminders: the day before, to the contact, once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from console.calendar.appointments import AppointmentLinks, queue_reminders


async def remind_appointments(ctx: dict[str, Any], *, now: datetime | None = None) -> int:
    """Queue the reminders of the appointments starting within a day; safe to run twice or on
    two workers at once (each reminder has its idempotency key)."""
    settings = ctx.get("settings")
    template = settings.contact_whatsapp_template if settings is not None else None
    links = AppointmentLinks.of(settings) if settings is not None else None
    async with ctx["db"].transaction() as session:
        return await queue_reminders(
            session, now=now or datetime.now(UTC), whatsapp_template=template, links=links
        )
