"""How far a message sent to a contact got: the providers' status callbacks, in any order.

Statuses only move forward (queued → sent → delivered → read); a late "sent" after "read"
changes nothing, a failure is kept with the provider's reason, and a repeated callback is a no-op.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from console.live import events
from models import Interaction

RANK = {"queued": 0, "sent": 1, "delivered": 2, "read": 3, "failed": 4}
ERROR_LENGTH = 300


def outranks(status: str, current: str | None) -> bool:
    """Whether `status` tells more than `current` (read beats a late failure report)."""
    if current is None:
        return True
    if status == "failed":
        return current in ("queued", "sent")
    return current != "failed" and RANK[status] > RANK[current]


async def record_delivery(
    session: AsyncSession,
    business_id: uuid.UUID,
    provider_message_id: str,
    status: str,
    *,
    error: str = "",
    now: datetime,
) -> bool:
    """Move the message to `status` if that is news; False for unknown messages and old news."""
    if status not in RANK:
        raise ValueError(f"unknown delivery status {status!r}")
    allowed = [known for known in RANK if outranks(status, known)]
    result = await session.execute(
        update(Interaction)
        .where(
            Interaction.business_id == business_id,
            Interaction.provider_message_id == provider_message_id,
            Interaction.direction == "out",
            (Interaction.delivery_status.in_(allowed) | Interaction.delivery_status.is_(None)),
        )
        .values(
            delivery_status=status,
            delivery_error=error[:ERROR_LENGTH] if status == "failed" else "",
            delivery_updated_at=now,
        )
        .returning(Interaction.lead_id)
        .execution_options(synchronize_session=False)
    )
    lead_id = result.scalar_one_or_none()
    if lead_id is None:
        return False
    await events.record(session, business_id, "lead.updated", at=now, lead_id=lead_id)
    return True


async def record_send(
    session: AsyncSession,
    interaction_id: uuid.UUID,
    *,
    provider_id: str = "",
    error: str = "",
    now: datetime,
) -> None:
    """A reply's send went through (its provider id is now known) or failed for good; a status
    callback that came first and told more is kept."""
    values: dict[str, object] = {"delivery_updated_at": now}
    if error:
        values.update(delivery_status="failed", delivery_error=error[:ERROR_LENGTH])
    else:
        values.update(provider_message_id=provider_id[:200] or None, delivery_status="sent")
    status = "failed" if error else "sent"
    allowed = [known for known in RANK if outranks(status, known)]
    result = await session.execute(
        update(Interaction)
        .where(Interaction.id == interaction_id, Interaction.delivery_status.in_(allowed))
        .values(**values)
        .returning(Interaction.business_id, Interaction.lead_id)
        .execution_options(synchronize_session=False)
    )
    changed = result.one_or_none()
    if changed is not None:
        await events.record(
            session, changed.business_id, "lead.updated", at=now, lead_id=changed.lead_id
        )
