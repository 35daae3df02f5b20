"""The supervisor's wallboard: per business its open leads, the oldest one still waiting for a
first response, and the open warnings and breaches; then the secretaries on duty (connected to
the live console in any process) and what each is handling (leads she holds, calls she is
logging) and her state for calls (available, on a call, on a break… and since when). Six
statements whatever the data; who is connected comes from the hub, not the
database, and a change of it refreshes the open wallboards at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.live.hub import Hub
from console.people.tenancy import visible_businesses
from console.screens.alerts_page import current
from console.voice.states import AgentState, Standing, standing_of
from models import AgentStatus, Alert, Business, Contact, Interaction, Lead, Role, User


@dataclass(frozen=True)
class BusinessLine:
    business_id: uuid.UUID
    name: str
    open_leads: int = 0
    waiting: int = 0  # not answered yet
    oldest_waiting_at: datetime | None = None
    warnings: int = 0
    breaches: int = 0

    def waiting_minutes(self, now: datetime) -> int | None:
        if self.oldest_waiting_at is None:
            return None
        return max(0, int((now - self.oldest_waiting_at).total_seconds() // 60))


@dataclass(frozen=True)
class Handling:
    lead_id: uuid.UUID
    business_name: str
    contact_name: str
    subject: str
    calling: bool  # a call log open (a draft), not only held


@dataclass(frozen=True)
class SecretaryLine:
    user_id: uuid.UUID
    name: str
    online: bool
    where: str  # "calling", "viewing" a lead, "console", or "" when not connected
    handling: list[Handling] = field(default_factory=list)
    state: Standing | None = None  # her state for calls, and since when


@dataclass(frozen=True)
class Wallboard:
    businesses: list[BusinessLine]
    secretaries: list[SecretaryLine]
    now: datetime

    @property
    def totals(self) -> BusinessLine:
        return BusinessLine(
            uuid.UUID(int=0),
            "",
            open_leads=sum(b.open_leads for b in self.businesses),
            waiting=sum(b.waiting for b in self.businesses),
            oldest_waiting_at=min(
                (b.oldest_waiting_at for b in self.businesses if b.oldest_waiting_at), default=None
            ),
            warnings=sum(b.warnings for b in self.businesses),
            breaches=sum(b.breaches for b in self.businesses),
        )


def on_duty(hub: Hub | None) -> dict[str, str]:
    """Who is connected now, by user id: "calling", "viewing" (a lead) or "console". Each
    process reports its secretaries through the hub on every change (and every 15 s)."""
    return hub.on_duty() if hub is not None else {}


async def wallboard(
    session: AsyncSession, user: User, *, now: datetime, online: dict[str, str]
) -> Wallboard:
    businesses = [b for b in await visible_businesses(session, user) if b.active]
    ids = [b.id for b in businesses]
    lines: dict[uuid.UUID, dict[str, Any]] = {b.id: {"name": b.name} for b in businesses}
    waiting = Lead.first_response_at.is_(None)
    for business_id, count, waiting_count, oldest in await session.execute(
        select(
            Lead.business_id,
            func.count(),
            func.sum(case((waiting, 1), else_=0)),
            func.min(case((waiting, Lead.created_at), else_=None)),
        )
        .where(Lead.closed_at.is_(None), Lead.business_id.in_(ids))
        .group_by(Lead.business_id)
    ):
        lines[business_id].update(
            open_leads=count, waiting=int(waiting_count or 0), oldest_waiting_at=oldest
        )
    for business_id, level, count in await session.execute(
        select(Alert.business_id, Alert.level, func.count())
        .where(*current(), Alert.business_id.in_(ids))  # one per lead, as the panel shows
        .group_by(Alert.business_id, Alert.level)
    ):
        lines[business_id]["breaches" if level == "breach" else "warnings"] = count
    board = [BusinessLine(business_id, **numbers) for business_id, numbers in lines.items()]
    board.sort(key=lambda line: (-line.breaches, -line.waiting, line.name))
    return Wallboard(board, await _secretaries(session, ids, online, now), now)


async def _secretaries(
    session: AsyncSession, business_ids: list[uuid.UUID], online: dict[str, str], now: datetime
) -> list[SecretaryLine]:
    handling: dict[uuid.UUID | None, dict[uuid.UUID, Handling]] = {}
    held = await session.execute(
        select(Lead.claimed_by_id, Lead.id, Business.name, Contact.name, Lead.subject)
        .join(Business, Business.id == Lead.business_id)
        .join(Contact, Contact.id == Lead.contact_id)
        .where(
            Lead.closed_at.is_(None),
            Lead.claimed_by_id.is_not(None),
            Lead.business_id.in_(business_ids),
        )
        .order_by(Lead.claimed_at, Lead.id)
    )
    for user_id, lead_id, business, contact, subject in held:
        handling.setdefault(user_id, {})[lead_id] = Handling(
            lead_id, business, contact, subject, calling=False
        )
    drafts = await session.execute(
        select(Interaction.user_id, Lead.id, Business.name, Contact.name, Lead.subject)
        .join(Lead, Lead.id == Interaction.lead_id)
        .join(Business, Business.id == Interaction.business_id)
        .join(Contact, Contact.id == Interaction.contact_id)
        .where(
            Interaction.status == "draft",
            Interaction.user_id.is_not(None),
            Interaction.business_id.in_(business_ids),
        )
        .order_by(Interaction.started_at, Interaction.id)
    )
    for user_id, lead_id, business, contact, subject in drafts:
        handling.setdefault(user_id, {})[lead_id] = Handling(
            lead_id, business, contact, subject, calling=True
        )
    connected = [uuid.UUID(user_id) for user_id in online]
    people = await session.execute(
        select(User.id, User.name, AgentStatus)
        .outerjoin(AgentStatus, AgentStatus.user_id == User.id)
        .where(
            User.role == Role.SECRETARY,
            User.active.is_(True),
            or_(
                User.id.in_(connected),
                User.id.in_(list(handling)),
                AgentStatus.state != AgentState.OFFLINE.value,
            ),
        )
        .order_by(User.name, User.id)
    )
    lines = [
        SecretaryLine(
            user_id,
            name,
            online=str(user_id) in online,
            where=online.get(str(user_id), ""),
            handling=sorted(
                handling.get(user_id, {}).values(), key=lambda h: (not h.calling, h.business_name)
            ),
            state=standing_of(status, user_id, now),
        )
        for user_id, name, status in people
    ]
    lines.sort(key=lambda line: (not line.online, line.name))
    return lines
