"""What the alerts panel shows: each open alert with its lead, flat and in one statement."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.people.tenancy import scoped
from models import Alert, Business, Contact, Lead, User


@dataclass(frozen=True, slots=True)
class AlertRow:
    id: uuid.UUID
    business_id: uuid.UUID
    business_name: str
    lead_id: uuid.UUID | None
    kind: str
    level: str
    percent: int
    due_at: datetime
    raised_at: datetime
    contact_name: str | None
    contact_phone: str | None
    subject: str | None
    channel: str | None

    @staticmethod
    def columns() -> tuple[Any, ...]:
        return (
            Alert.id,
            Alert.business_id,
            Business.name,
            Alert.lead_id,
            Alert.kind,
            Alert.level,
            Alert.percent,
            Alert.due_at,
            Alert.raised_at,
            Contact.name,
            Contact.phone,
            Lead.subject,
            Lead.channel,
        )


def _statement() -> Any:
    return (
        select(*AlertRow.columns())
        .join(Business, Business.id == Alert.business_id)
        .outerjoin(Lead, Lead.id == Alert.lead_id)
        .outerjoin(Contact, Contact.id == Lead.contact_id)
        .where(Alert.acknowledged_at.is_(None), Alert.cleared_at.is_(None))
    )


async def alert_rows(session: AsyncSession, user: User, *, limit: int = 200) -> list[AlertRow]:
    statement = (
        scoped(_statement(), user, Alert.business_id)
        .order_by(Alert.level.asc(), Alert.due_at)
        .limit(limit)
    )
    return [AlertRow(*row) for row in await session.execute(statement)]


async def alert_row(session: AsyncSession, business_id: str, alert_id: str) -> AlertRow | None:
    """One row for a live push (the hub has already checked who may see the business)."""
    statement = _statement().where(
        Alert.id == uuid.UUID(alert_id), Alert.business_id == uuid.UUID(business_id)
    )
    row = (await session.execute(statement)).one_or_none()
    return AlertRow(*row) if row else None
