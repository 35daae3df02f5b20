"""Agent states: where each secretary stands for calls now, the spans she spent in each state
(for the reports), and each business's call settings (how long a call rings one secretary, how
long it may wait for one, how long her wrap-up lasts, the N of its service level)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column

STATES = "('available', 'ringing', 'on_call', 'wrap_up', 'break', 'offline')"

DEFAULT_RING_SECONDS = 20
DEFAULT_WAIT_LIMIT_SECONDS = 120
DEFAULT_WRAP_UP_SECONDS = 30
# The service level's N: the share of calls answered within N seconds (80/20 is the norm).
DEFAULT_SERVICE_LEVEL_SECONDS = 20


class AgentStatus(Base):
    """A secretary's state now: one row per secretary (none yet: offline).

    `free_from` is when she is free for a call: for "available" the moment she became idle (the
    longest idle is rung first), for "wrap_up" the moment her wrap-up ends, after which she
    counts as available without anything being written (readers compare it with the clock)."""

    __tablename__ = "agent_states"
    __table_args__ = (
        CheckConstraint(f"state IN {STATES}", name="state"),
        CheckConstraint(f"resume_state IN {STATES}", name="resume_state"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column()
    reason: Mapped[str | None] = mapped_column(String(32), default=None)
    free_from: Mapped[datetime | None] = mapped_column(default=None)
    # The business of her current or last call (its wrap-up length applies).
    business_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("businesses.id", ondelete="SET NULL"), default=None
    )
    # While offline: the state (and reason) she returns to when a console of hers opens.
    resume_state: Mapped[str | None] = mapped_column(String(16), default=None)
    resume_reason: Mapped[str | None] = mapped_column(String(32), default=None)


class AgentStateSpan(Base):
    """One stretch of time a secretary spent in one state; `ended_at` is None while it lasts.
    A wrap-up is written whole when it starts (its end is known) with the open "available"
    span after it; a change before its end cuts it there and drops what was ahead."""

    __tablename__ = "agent_state_spans"
    __table_args__ = (
        CheckConstraint(f"state IN {STATES}", name="state"),
        Index("ix_agent_state_spans_user_id_started_at", "user_id", "started_at"),
        Index("ix_agent_state_spans_started_at", "started_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32), default=None)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(default=None)


class CallSettings(Base):
    """A business's call settings; a business without a row has the defaults."""

    __tablename__ = "call_settings"
    __table_args__ = (
        CheckConstraint("ring_seconds BETWEEN 5 AND 120", name="ring_seconds"),
        CheckConstraint("wait_limit_seconds BETWEEN 0 AND 3600", name="wait_limit_seconds"),
        CheckConstraint("wrap_up_seconds BETWEEN 0 AND 900", name="wrap_up_seconds"),
        CheckConstraint("service_level_seconds BETWEEN 5 AND 600", name="service_level_seconds"),
    )

    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    ring_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_RING_SECONDS)
    wait_limit_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_WAIT_LIMIT_SECONDS)
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_WRAP_UP_SECONDS)
    service_level_seconds: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_SERVICE_LEVEL_SECONDS
    )


class RosterChanges(Base):
    """A counter that every write to what routing's roster reads moves (triggers, migration
    0034), so the roster's periodic reload reads one number and loads only when it moved.
    SQLite counts in this table's one row; PostgreSQL in the sequence `roster_changes_seq`
    (nextval locks no row), leaving the table empty."""

    __tablename__ = "roster_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    counter: Mapped[int] = mapped_column(BigInteger)
