"""What the alerts panel shows: one row per lead in one statement, at its current level.

A lead's first-response alerts (the 25/50/75% warnings and the breach) are one alert that rises:
the panel shows only the highest of its open ones, and acknowledging it acknowledges them all
(`sla.acknowledge`). Once acknowledged, the warnings that follow stay quiet; only the breach
opens it again, once. A task's alerts are rows of their own."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from console.people.tenancy import may_see_bound
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
    lead_created_at: datetime | None

    @property
    def row_id(self) -> str:
        """The lead's one row (a higher level replaces it in place), else the alert's."""
        return f"alert-lead-{self.lead_id}" if self.kind == "first_response" else f"alert-{self.id}"

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
            Lead.created_at,
        )


def current() -> tuple[ColumnElement[bool], ...]:
    """The alerts a person still has to handle: open, a lead's current level only (its lower
    open ones are the same alert), and after an acknowledgement only the breach."""
    higher, acknowledged = aliased(Alert), aliased(Alert)
    return (
        Alert.acknowledged_at.is_(None),
        Alert.cleared_at.is_(None),
        ~exists().where(
            higher.lead_id == Alert.lead_id,
            higher.kind == Alert.kind,
            higher.kind == "first_response",
            higher.percent > Alert.percent,
            higher.acknowledged_at.is_(None),
            higher.cleared_at.is_(None),
        ),
        or_(
            Alert.kind != "first_response",
            Alert.level == "breach",
            ~exists().where(
                acknowledged.lead_id == Alert.lead_id,
                acknowledged.kind == Alert.kind,
                acknowledged.acknowledged_at.is_not(None),
            ),
        ),
    )


def _statement() -> Any:
    return (
        select(*AlertRow.columns())
        .join(Business, Business.id == Alert.business_id)
        .outerjoin(Lead, Lead.id == Alert.lead_id)
        .outerjoin(Contact, Contact.id == Lead.contact_id)
        .where(*current())
    )


@functools.cache
def _rows_statement(role: str, limit: int) -> Any:
    """Built once per role and length: the alerts page reads it on every request."""
    return (
        _statement()
        .where(may_see_bound(role, Alert.business_id))
        .order_by(Alert.level.asc(), Alert.due_at)
        .limit(limit)
    )


async def alert_rows(session: AsyncSession, user: User, *, limit: int = 200) -> list[AlertRow]:
    statement = _rows_statement(user.role, limit)
    return [AlertRow(*row) for row in await session.execute(statement, {"viewer_id": user.id})]


async def alert_row(session: AsyncSession, business_id: str, alert_id: str) -> AlertRow | None:
    """One row for a live push (the hub has already checked who may see the business)."""
    statement = _statement().where(
        Alert.id == uuid.UUID(alert_id), Alert.business_id == uuid.UUID(business_id)
    )
    row = (await session.execute(statement)).one_or_none()
    return AlertRow(*row) if row else None
