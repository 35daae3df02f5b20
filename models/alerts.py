"""Alerts (an SLA warning or breach, an overdue task) and the notifications they send."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("level IN ('warning', 'breach')", name="level"),
        Index(
            "ix_alerts_business_open",
            "business_id",
            "raised_at",
            sqlite_where=text("acknowledged_at IS NULL AND cleared_at IS NULL"),
            postgresql_where=text("acknowledged_at IS NULL AND cleared_at IS NULL"),
        ),
        Index("ix_alerts_lead", "lead_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    # "lead:<id>:first_response:80" — one alert per subject, kind and threshold, whoever raises it.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), default=None
    )
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), default=None
    )
    kind: Mapped[str] = mapped_column(String(32))  # first_response, task_ack, task_due
    level: Mapped[str] = mapped_column(String(8))
    percent: Mapped[int] = mapped_column(Integer)  # of the target that had passed
    due_at: Mapped[datetime]
    raised_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(default=None)
    acknowledged_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    cleared_at: Mapped[datetime | None] = mapped_column(default=None)


class Notification(Base):
    """A message out of the system (e-mail, SMS, WhatsApp, Web Push), sent once, retried with
    backoff."""

    __tablename__ = "notifications"
    __table_args__ = (
        # withdrawn: called off before it was sent (an appointment cancelled), never a failure
        CheckConstraint("status IN ('queued', 'sent', 'failed', 'withdrawn')", name="status"),
        Index(
            "ix_notifications_queued",
            "next_attempt_at",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        # the admin's page of failed sends, newest first (routes/notices.py)
        Index(
            "ix_notifications_failed",
            "created_at",
            sqlite_where=text("status = 'failed'"),
            postgresql_where=text("status = 'failed'"),
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    alert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("alerts.id", ondelete="SET NULL"), default=None
    )
    channel: Mapped[str] = mapped_column(String(16))  # email, sms, whatsapp, push
    # A secretary's reply to a contact is sent as a notification too: the interaction it is
    # logged as, the business's line it goes out from, and (WhatsApp, outside the 24-hour
    # window) the approved template it must use.
    interaction_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), default=None, index=True
    )
    sender: Mapped[str] = mapped_column(String(254), default="", server_default="")
    template: Mapped[str] = mapped_column(String(100), default="", server_default="")
    # WhatsApp reply buttons sent with the body: [{"id", "title"}] (see MetaWhatsApp.send_buttons).
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, default=None)
    # An e-mail's attachment: {"filename", "content_type", "text"} (an appointment's .ics).
    attachment: Mapped[dict[str, str] | None] = mapped_column(JSON, default=None)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    provider_id: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # A message to an owner about a lead (after a call: console/leads/call_notices.py), shown on
    # the lead with its delivery, and when he marked it seen.
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), default=None, index=True
    )
    seen_at: Mapped[datetime | None] = mapped_column(default=None)
