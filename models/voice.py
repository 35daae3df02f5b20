"""Calls through the agency's SIP server: one row per call, from its first ring to its end,
written from the SIP server's requests and events (never from a browser), so ring, wait and
talk times per call, per business and per secretary are read from here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column

CALL_STATES = ("waiting", "ringing", "answered", "ended", "missed", "abandoned", "failed")
END_REASONS = (
    "caller_hangup",
    "agent_hangup",
    "cancelled",
    "overflow",
    "failed",
    "dialog_end",
)


class Call(Base):
    """A call, in or out. `arrived_at` is the first question of the SIP server, `ringing_at`
    the first ring of a secretary, `answered_at` and `ended_at` as the SIP server saw them:
    wait = ringing - arrived, ring = answered - ringing, talk = ended - answered."""

    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint(f"state IN {CALL_STATES}", name="state"),
        Index("uq_calls_sip_call_id", "sip_call_id", unique=True),
        Index("ix_calls_business_arrived", "business_id", "arrived_at"),
        Index("ix_calls_answered_by_arrived", "answered_by_id", "arrived_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    interaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="SET NULL"), default=None
    )
    sip_call_id: Mapped[str] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(String(3))
    caller: Mapped[str] = mapped_column(String(64), default="")
    dialled: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(12))
    answered_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    arrived_at: Mapped[datetime] = mapped_column()
    ringing_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    end_reason: Mapped[str | None] = mapped_column(String(16), default=None)
    # The SIP server's last question and Mazkira's answer to it, so a repeat gets the same.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[str] = mapped_column(String(2000), default="")
    # Secretaries (user ids as hex) rung by the last answer, and all rung so far.
    ringing: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rung: Mapped[list[Any]] = mapped_column(JSON, default=list)
