"""The agency's records: who did what (audit), the business's calendar, customers' feedback."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow


class AuditEvent(Base):
    """One thing a person did that the agency must be able to show later: a sign-in (also a
    failed one), a view of a lead's details, a change to a script, a policy, a user or an
    assignment, an export or an erasure. Kept when the person is deleted (their e-mail stays)."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_business_at", "business_id", "at"),
        Index("ix_audit_events_actor_at", "actor_id", "at"),
        Index("ix_audit_events_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    actor_email: Mapped[str] = mapped_column(String(254), default="")
    business_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("businesses.id", ondelete="SET NULL"), default=None
    )
    action: Mapped[str] = mapped_column(String(64))  # e.g. sign_in, lead.viewed, script.published
    subject_type: Mapped[str] = mapped_column(String(32), default="")
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(64), default="")  # the client's IP address
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Appointment(Base):
    """A meeting the secretary books in the business's calendar, inside its hours; never two
    at once for one business (checked under a lock on the business row)."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_appointments_business_starts", "business_id", "starts_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    title: Mapped[str] = mapped_column(String(200), default="")
    location: Mapped[str] = mapped_column(String(300), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    request_key: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)
    # bumped each time the meeting moves: the .ics a calendar already holds is replaced by one
    # with a higher SEQUENCE (RFC 5545), and each move's notices have keys of their own
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Survey(Base):
    """The short survey a contact gets after a lead is won: one per lead, answered once."""

    __tablename__ = "surveys"
    __table_args__ = (
        CheckConstraint("stars IS NULL OR stars BETWEEN 1 AND 5", name="stars"),
        Index("ix_surveys_business_answered", "business_id", "answered_at"),
        Index("ix_surveys_contact", "contact_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), unique=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    stars: Mapped[int | None] = mapped_column(Integer, default=None)
    would_recommend: Mapped[bool | None] = mapped_column(Boolean, default=None)
    improve: Mapped[str] = mapped_column(Text, default="", server_default="")


class ChangeRequest(Base):
    """An owner's change that commits the agency (24/7 coverage, hours beyond the contract,
    another time zone): it waits for an admin, who approves (the change is made) or declines."""

    __tablename__ = "change_requests"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'approved', 'declined', 'withdrawn')", name="state"),
        Index("ix_change_requests_business_state", "business_id", "state"),
        Index("ix_change_requests_state_at", "state", "requested_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32), default="hours")
    # What is asked, as typed and checked: {"timezone", "always_open", "week"}; and why it
    # needs the agency: a list of "always_open", "beyond_contract", "timezone".
    asked: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(String(500), default="")
