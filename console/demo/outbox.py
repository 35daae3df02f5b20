"""The demo's outbox: what the console would have sent by e-mail, SMS and WhatsApp, had a
provider been configured (`Senders` marks such a notification sent with an outbox id)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.channels.notify import OUTBOX_PREFIX
from models import Business, Notification

SHOWN = 200


@dataclass(frozen=True)
class OutboxMessage:
    channel: str
    recipient: str
    subject: str
    body: str
    buttons: list[str]
    business: str
    sent_at: datetime


async def outbox(session: AsyncSession) -> list[OutboxMessage]:
    """The newest messages delivered to the outbox, newest first, in one statement."""
    rows = await session.execute(
        select(Notification, Business.name)
        .join(Business, Business.id == Notification.business_id)
        .where(Notification.status == "sent", Notification.provider_id.startswith(OUTBOX_PREFIX))
        .order_by(Notification.sent_at.desc(), Notification.id.desc())
        .limit(SHOWN)
    )
    return [
        OutboxMessage(
            channel=note.channel,
            recipient=note.recipient,
            subject=note.subject,
            body=note.body,
            buttons=[button.get("title", "") for button in note.buttons or []],
            business=business,
            sent_at=note.sent_at or note.created_at,
        )
        for note, business in rows
    ]
