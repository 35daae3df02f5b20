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
    "transferred",
    "voicemail",  # nobody took it: the caller left a message (console/voice/voicemail.py)
)
TRANSFER_KINDS = ("blind", "warm")
# secretary: another secretary of the business, whose console phone rings (number: "").
TRANSFER_TARGETS = ("owner", "on_call", "person", "business", "secretary")
# requested: asked for, not yet carried out; consulting: the secretary talks to the target first
# (warm); ringing: the caller's leg to the target rings; connected: the target answered the
# caller; returned: warm, and she went back to the caller; failed: the target's leg failed.
TRANSFER_OUTCOMES = ("requested", "consulting", "ringing", "connected", "returned", "failed")


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
    # Secretaries (hex, in order) who declined its ring with the reject button (not rung for it
    # again), and when the first did: unanswered, the call's outcome is "rejected".
    declined: Mapped[list[Any]] = mapped_column(JSON, default=list)
    rejected_at: Mapped[datetime | None] = mapped_column(default=None)


class CallTransfer(Base):
    """A call put through to someone else, logged on its lead: to whom (the number dialled and
    who that is), when, blind or after talking to him first (warm), and, from the SIP server's
    events on the legs, when he answered the caller and when they hung up (how long he spoke).
    `token` names the transfer in the SIP address the caller is referred to (`xfer-<token>`),
    so the SIP server asks Mazkira where that goes and nothing else can be dialled that way."""

    __tablename__ = "call_transfers"
    __table_args__ = (
        CheckConstraint(f"kind IN {TRANSFER_KINDS}", name="kind"),
        CheckConstraint(f"target IN {TRANSFER_TARGETS}", name="target"),
        CheckConstraint(f"outcome IN {TRANSFER_OUTCOMES}", name="outcome"),
        Index("uq_call_transfers_token", "token", unique=True),
        Index("ix_call_transfers_call", "call_id"),
        Index("ix_call_transfers_lead", "lead_id"),
        Index("ix_call_transfers_leg", "leg_call_id"),
        Index("ix_call_transfers_consult", "consult_call_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    call_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="SET NULL"), default=None
    )
    by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    token: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(12))
    number: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")  # who that is, as it was then
    person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    outcome: Mapped[str] = mapped_column(String(12), default="requested")
    requested_at: Mapped[datetime] = mapped_column()
    # The secretary's own call to him first (warm), and the caller's leg to him.
    consult_call_id: Mapped[str | None] = mapped_column(String(200), default=None)
    consult_answered_at: Mapped[datetime | None] = mapped_column(default=None)
    consult_ended_at: Mapped[datetime | None] = mapped_column(default=None)
    leg_call_id: Mapped[str | None] = mapped_column(String(200), default=None)
    leg_started_at: Mapped[datetime | None] = mapped_column(default=None)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)

    @property
    def talk_seconds(self) -> int | None:
        """How long he spoke with the caller, as the SIP server saw it."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.answered_at).total_seconds())
