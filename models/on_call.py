"""Who is found when something is urgent, and what a call does when nobody answers it: a
business's on-call rota and escalation chain, the pages sent down that chain, and its overflow
rules (console/tasks/paging.py, console/people/on_call.py, console/voice/overflow.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, id_column
from models.tenancy import User

OVERFLOW_ACTIONS = ("voicemail", "on_call", "business", "callback")
_ACTIONS = "('', 'voicemail', 'on_call', 'business', 'callback')"


class OnCallRota(Base):
    """One row per business. `chain`: [{"user": hex, "reach": "sms"|...}] in order (owner,
    deputy, ...); `weekly`: [{"day": 0-6 (Monday 0), "start": "HH:MM", "end": "HH:MM",
    "user": hex}]; `dates`: [{"date": "YYYY-MM-DD", "user": hex}]; `holidays`/`eves`: the user
    on call on the business calendar's holidays and their eves ("" for the weekly pattern)."""

    __tablename__ = "on_call_rotas"
    __table_args__ = (CheckConstraint("ack_minutes BETWEEN 1 AND 240", name="ack_minutes"),)

    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    ack_minutes: Mapped[int] = mapped_column(Integer, default=10)
    chain: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    weekly: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    dates: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    holidays: Mapped[str] = mapped_column(String(32), default="")
    eves: Mapped[str] = mapped_column(String(32), default="")


class Page(Base):
    """One person paged for an urgent hand-off: open until acknowledged or passed on (to the
    next in the chain, when its `ack_due_at` passes). Its code answers this page only, once."""

    __tablename__ = "pages"
    __table_args__ = (
        Index("ix_pages_task", "task_id", "position", unique=True),
        Index("ix_pages_recipient_code", "recipient", "code"),
        Index("ix_pages_open_due", "ack_due_at"),
        Index("ix_pages_lead", "lead_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    position: Mapped[int] = mapped_column(Integer)
    reach: Mapped[str] = mapped_column(String(16))  # as he asked to be reached
    channel: Mapped[str] = mapped_column(String(16))  # as the page went
    recipient: Mapped[str] = mapped_column(String(254))
    code: Mapped[str] = mapped_column(String(8))
    notification_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="SET NULL"), default=None
    )
    paged_at: Mapped[datetime]
    # While open: when it passes to the next; None once acknowledged or passed.
    ack_due_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_via: Mapped[str | None] = mapped_column(String(16), default=None)
    passed_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User | None] = relationship(lazy="raise")


class OverflowRule(Base):
    """What a call does when nobody takes it, per business: after the wait limit, outside
    covered hours, on a holiday ("" routes as usual; `waiting` "" is a call-back lead)."""

    __tablename__ = "overflow_rules"
    __table_args__ = (
        CheckConstraint(f"waiting IN {_ACTIONS}", name="waiting"),
        CheckConstraint(f"closed IN {_ACTIONS}", name="closed"),
        CheckConstraint(f"holiday IN {_ACTIONS}", name="holiday"),
    )

    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    waiting: Mapped[str] = mapped_column(String(16), default="")
    closed: Mapped[str] = mapped_column(String(16), default="")
    holiday: Mapped[str] = mapped_column(String(16), default="")
    other_business_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("businesses.id", ondelete="SET NULL"), default=None
    )
