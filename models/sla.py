"""Service promises: how fast a business's leads get a first response, and its tasks a reply."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow

ANY = ""  # a policy for every channel / priority


class SlaPolicy(Base):
    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("business_id", "channel", "priority"),
        CheckConstraint("first_response_minutes > 0", name="positive_target"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16), default=ANY)
    priority: Mapped[str] = mapped_column(String(8), default=ANY)
    # Counted in the business's covered minutes (see console/business/hours.py).
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    # Warnings at these shares of the target, e.g. [50, 80]; the breach is at 100.
    warn_at_percent: Mapped[list[int]] = mapped_column(JSON, default=lambda: [50, 80])
    notify_owner_on_breach: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskPolicy(Base):
    """How fast an owner should acknowledge, and finish, what is handed to him."""

    __tablename__ = "task_policies"

    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    acknowledge_minutes: Mapped[int] = mapped_column(Integer, default=120)
    remind_before_due_minutes: Mapped[int] = mapped_column(Integer, default=60)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
