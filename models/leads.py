"""A lead (one incoming request) and the interactions logged on it."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, id_column, utcnow
from models.contacts import Contact
from models.tenancy import Business, User

STAGES = ("new", "contacted", "meeting", "quote", "won", "lost")
OPEN_STAGES = ("new", "contacted", "meeting", "quote")
PRIORITIES = ("low", "normal", "high", "urgent")
INTERACTION_KINDS = ("inbound_call", "outbound_call", "whatsapp", "sms", "email", "note")
OUTCOMES = (
    "answered",
    "booked_meeting",
    "sent_quote",
    "call_back",
    "no_answer",
    "voicemail",
    "wrong_number",
    "not_interested",
    "transferred_to_owner",
    "info_given",
)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(
            "channel IN ('phone', 'whatsapp', 'sms', 'email', 'web', 'walk-in')", name="channel"
        ),
        CheckConstraint(
            "stage IN ('new', 'contacted', 'meeting', 'quote', 'won', 'lost')", name="stage"
        ),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
        # The inbox: open leads of a few businesses, unanswered first, least time left first. Only
        # open rows are indexed, and the index covers the page's ordering and every filter count.
        Index(
            "ix_leads_open_queue",
            "business_id",
            "queue_rank",
            "queue_at",
            "id",
            "channel",
            "stage",
            "claimed_by_id",
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
        # The inbox's counts: grouped in this order, SQLite reads the open leads in it instead of
        # sorting them (a temporary B-tree of every open lead she sees, on every render).
        Index(
            "ix_leads_open_counts",
            "business_id",
            "channel",
            "stage",
            "claimed_by_id",
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
        # The follow-up reminders (console/tasks/reminders.py): only leads waiting for one.
        Index(
            "ix_leads_followup",
            "followup_at",
            sqlite_where=text("followup_at IS NOT NULL"),
            postgresql_where=text("followup_at IS NOT NULL"),
        ),
        Index("ix_leads_contact_created", "contact_id", "created_at"),
        # The channel's own message id: the same delivery twice is one lead (NULLs never clash).
        Index("uq_leads_business_external", "business_id", "external_id", unique=True),
        # A business's leads newest first (the API's pages, with `id` their tie-break).
        Index("ix_leads_business_created_id", "business_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(300), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(100), default="")
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # A web form's phone that could exist but lies in a range not allocated (yet), as typed:
    # kept on the contact, shown to the secretary as "check the number" ("" when allocated).
    phone_check: Mapped[str] = mapped_column(String(40), default="", server_default="")
    stage: Mapped[str] = mapped_column(String(16), default="new")
    stage_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # At the quote stage: the next moment to look at its follow-up reminders (days 2, 5, 10).
    followup_at: Mapped[datetime | None] = mapped_column(default=None)
    lost_reason: Mapped[str] = mapped_column(String(300), default="")
    deal_value: Mapped[Decimal | None] = mapped_column(Numeric(12, 2), default=None)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    claimed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(default=None)
    first_response_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # Privacy: when its notes and messages were anonymised by the retention job.
    anonymised_at: Mapped[datetime | None] = mapped_column(default=None)
    # The first-response promise (console/sla/sla.py): its target in covered minutes and when it is
    # missed; the next moment an alert is due is its `LeadAlarm`, while one is.
    sla_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    respond_by: Mapped[datetime | None] = mapped_column(default=None)
    warn_at: Mapped[datetime | None] = mapped_column(default=None)  # the first warning
    first_response_covered_minutes: Mapped[float | None] = mapped_column(Float, default=None)
    first_response_wall_minutes: Mapped[float | None] = mapped_column(Float, default=None)
    first_response_channel: Mapped[str | None] = mapped_column(String(16), default=None)
    # The inbox's order: 0 while waiting for a first response (by respond_by), then 1.
    queue_rank: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    queue_at: Mapped[datetime] = mapped_column(default=utcnow)
    # How many times the contact reached out on this lead: its opening and every message or
    # call that joined it.
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    business: Mapped[Business] = relationship(lazy="raise")
    contact: Mapped[Contact] = relationship(lazy="raise")
    claimed_by: Mapped[User | None] = relationship(foreign_keys=[claimed_by_id], lazy="raise")
    # Set only on a lead being created (console/sla/sla.py: start_clock); later the alarm row is
    # written and deleted by statements, never through this attribute.
    alarm: Mapped[LeadAlarm | None] = relationship(
        lazy="raise", cascade="save-update", passive_deletes=True
    )


class LeadAlarm(Base):
    """The next moment a lead waiting for its first response is due an alert (a warning threshold
    or the breach); no row once none is due. A narrow table of its own because the SLA sweep
    moves a thousand of these at a time: rewriting that many wide `leads` rows and their entries
    in seven indexes costs PostgreSQL far more than these two-column rows and their one index."""

    __tablename__ = "lead_alarms"

    lead_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime] = mapped_column(index=True)


class Interaction(Base):
    """One touch on a lead; a call being logged is a draft until it is wrapped up."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('inbound_call', 'outbound_call', 'whatsapp', 'sms', 'email', 'note')",
            name="kind",
        ),
        CheckConstraint("status IN ('draft', 'done')", name="status"),
        Index("ix_interactions_lead_started", "lead_id", "started_at"),
        Index("ix_interactions_contact_started", "contact_id", "started_at"),
        # The owner's review (console/screens/portal.py): a business's handled calls, newest
        # first, `id` their tie-break.
        Index("ix_interactions_business_started_id", "business_id", "started_at", "id"),
        # Her calls not wrapped up (the inbox's "mine"): few rows, so a partial index.
        Index(
            "ix_interactions_user_drafts",
            "user_id",
            sqlite_where=text("status = 'draft'"),
            postgresql_where=text("status = 'draft'"),
        ),
        Index("uq_interactions_business_request_key", "business_id", "request_key", unique=True),
        # A message's id at its provider (wamid, MessageSid, Message-Id): a delivery written once,
        # and the row a status callback updates.
        Index(
            "uq_interactions_business_provider_message",
            "business_id",
            "provider_message_id",
            unique=True,
        ),
        CheckConstraint("direction IN ('in', 'out')", name="direction"),
        CheckConstraint(
            "delivery_status IN ('queued', 'sent', 'delivered', 'read', 'failed')",
            name="delivery_status",
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(8), default="draft")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    summary: Mapped[str] = mapped_column(String(500), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str | None] = mapped_column(String(32), default=None)
    script_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("scripts.id", ondelete="SET NULL"), default=None
    )
    script_version: Mapped[int | None] = mapped_column(Integer, default=None)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The form's one-time key, for what a form creates (a note): a double click writes once.
    request_key: Mapped[str | None] = mapped_column(String(64), default=None)
    # Messages: which way they went, the provider's id, and (outgoing) how far they got.
    direction: Mapped[str | None] = mapped_column(String(3), default=None)
    provider_message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    delivery_status: Mapped[str | None] = mapped_column(String(12), default=None)
    delivery_error: Mapped[str] = mapped_column(String(300), default="", server_default="")
    delivery_updated_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A call being logged: her last activity on it (its start, a save that changed what she
    # typed, "still on the call"); its talk ends at most an idle time after it
    # (console/leads/calls.py).
    active_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User | None] = relationship(lazy="raise")

    @property
    def duration_seconds(self) -> int | None:
        if self.ended_at is None:
            return None
        return int((self.ended_at - self.started_at).total_seconds())
