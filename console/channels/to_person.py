"""Sending to one person on the channel he chose: the one seam every message to an owner (or
any person) goes through, whatever it says (hand-offs, reminders, a message after each call,
digests). A channel is added here, in `reach_of` and `send_to_person`, and every notice gains
it at once; Web Push rides beside the chosen channel for the kinds he wants by push."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.channels.notify import checked_recipient, queue_notification, queue_push
from console.people.availability import held_until
from models import User

PERSON_CHANNELS = ("email", "sms", "whatsapp")


@dataclass(frozen=True)
class Reach:
    channel: str
    recipient: str


def reach_of(user: User, channel: str = "") -> Reach:
    """Where a message to him goes: the channel asked for (else his own), by e-mail when that
    channel has no address for him."""
    wanted = channel or user.notify_channel
    if wanted != "email" and wanted in PERSON_CHANNELS and user.phone:
        try:
            return Reach(wanted, checked_recipient(wanted, user.phone))
        except Invalid:  # a phone the channel cannot send to: e-mail still reaches him
            pass
    return Reach("email", user.email)


async def send_to_person(
    session: AsyncSession,
    user: User,
    *,
    key: str,
    business_id: uuid.UUID,
    subject: str,
    body: str,
    channel: str = "",
    buttons: list[dict[str, str]] | None = None,
    whatsapp_template: str = "",
    lead_id: uuid.UUID | None = None,
    push_kind: str = "",
    push_path: str = "/portal",
    send_at: datetime | None = None,
    now: datetime,
) -> bool:
    """Queue a message to him once under `key` (True when new): on `channel` or his own, held
    while he is away (console/people/availability.py) or until `send_at`. On WhatsApp an
    approved `whatsapp_template` ("name:language:body") carries it outside the 24-hour window.
    A `push_kind` he wants by push (console/channels/push.py) also goes to his browsers, and a
    tap on it opens `push_path`."""
    reach = reach_of(user, channel)
    held = held_until(user, now)
    later = max((moment for moment in (held, send_at) if moment is not None), default=None)
    if push_kind:
        await queue_push(
            session,
            user,
            kind=push_kind,
            key=key,
            business_id=business_id,
            title=subject,
            body=body,
            path=push_path,
            now=now,
            send_at=later,
        )
    on_whatsapp = reach.channel == "whatsapp"
    return await queue_notification(
        session,
        key=key,
        business_id=business_id,
        channel=reach.channel,
        recipient=reach.recipient,
        subject=subject,
        body=body,
        buttons=buttons if on_whatsapp and not whatsapp_template else None,
        template=whatsapp_template if on_whatsapp else "",
        user_id=user.id,
        lead_id=lead_id,
        now=now,
        send_at=later,
    )
