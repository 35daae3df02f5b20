"""A follow-up handed off to someone, usually the business's owner."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, id_column, utcnow
from models.tenancy import Business, User

TASK_STATUSES = ("open", "done", "cancelled")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'done', 'cancelled')", name="status"),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
        Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),
        Index("ix_tasks_business_status_due", "business_id", "status", "due_at"),
        Index("ix_tasks_lead", "lead_id"),
        # The form's one-time key: a double click hands off once.
        Index("uq_tasks_business_request_key", "business_id", "request_key", unique=True),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    assignee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    request_key: Mapped[str | None] = mapped_column(String(64), default=None)
    details: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime]
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    status: Mapped[str] = mapped_column(String(12), default="open")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    # The owner's acknowledgement, against the business's task policy.
    acknowledge_by: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    next_alert_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    # When the assignee is reminded that the due time is near (console/tasks/task_sla.py).
    remind_at: Mapped[datetime | None] = mapped_column(default=None)
    # Who acknowledged, from where (console, link, whatsapp), and how long it took in the
    # business's covered minutes: what the task policy's promise is measured against.
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    acknowledged_via: Mapped[str | None] = mapped_column(String(16), default=None)
    acknowledge_covered_minutes: Mapped[float | None] = mapped_column(Float, default=None)

    business: Mapped[Business] = relationship(lazy="raise")
    assignee: Mapped[User] = relationship(foreign_keys=[assignee_id], lazy="raise")
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id], lazy="raise")
