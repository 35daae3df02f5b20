"""The audit log: who did what, when and from where, written in the same transaction as the deed.

Every service that must be accountable calls `record_audit` with the session it writes with, so
a change and its record commit (or roll back) together. Sign-ins and views are recorded too.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditEvent, User

MAX_ACTION = 64


async def record_audit(
    session: AsyncSession,
    *,
    action: str,
    now: datetime,
    actor: User | None = None,
    actor_email: str = "",
    business_id: uuid.UUID | None = None,
    subject_type: str = "",
    subject_id: str | uuid.UUID = "",
    address: str = "",
    **details: Any,
) -> AuditEvent:
    """Add one audit row; `details` must be JSON-serialisable and hold no secrets."""
    if not action or len(action) > MAX_ACTION:
        raise ValueError(f"an audit action needs 1-{MAX_ACTION} characters")
    event = AuditEvent(
        at=now,
        actor_id=actor.id if actor is not None else None,
        actor_email=(actor.email if actor is not None else actor_email)[:254],
        business_id=business_id,
        action=action,
        subject_type=subject_type[:32],
        subject_id=str(subject_id)[:64],
        address=address[:64],
        details=details,
    )
    session.add(event)
    return event
