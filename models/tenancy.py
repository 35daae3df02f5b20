"""Businesses, the people who use the console, and who may see which business."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow

# Sunday–Thursday full days and a short Friday: the usual Israeli small-business week.
DEFAULT_WEEKLY_HOURS: dict[str, list[list[str]]] = {
    "sun": [["08:00", "18:00"]],
    "mon": [["08:00", "18:00"]],
    "tue": [["08:00", "18:00"]],
    "wed": [["08:00", "18:00"]],
    "thu": [["08:00", "18:00"]],
    "fri": [["08:00", "13:00"]],
    "sat": [],
}


class Role(enum.StrEnum):
    ADMIN = "admin"
    SECRETARY = "secretary"
    OWNER = "owner"


class Business(Base):
    __tablename__ = "businesses"

    id: Mapped[uuid.UUID] = id_column()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Jerusalem")
    locale: Mapped[str] = mapped_column(String(8), default="he")
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(
        JSON,
        default=lambda: {day: [list(w) for w in ws] for day, ws in DEFAULT_WEEKLY_HOURS.items()},
    )
    intake_key: Mapped[str] = mapped_column(String(64))
    # Coverage beyond the weekly hours: {"closed_dates": [...], "special_hours": {date: [...]}},
    # and whether the agency answers this business around the clock.
    hours_exceptions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    always_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # The weekly hours the agency agreed to cover (None: the weekly hours as they are); an
    # owner's change beyond them waits for the agency (console/agency/change_requests.py).
    contract_hours: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The owner's script edits are published at once (else they wait as a draft for the agency).
    owner_may_publish: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # A message or call from a contact whose open lead here is at most this many days old joins
    # that lead (another attempt) instead of opening one.
    repeat_window_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    # Privacy: closed leads' notes are anonymised this many days after closing (None: kept).
    retention_days: Mapped[int | None] = mapped_column(Integer, default=None)
    # The stage a call's outcome moves its lead to, {outcome: stage or ""}, as the admin set it
    # (console/leads/outcomes.py; empty: the defaults).
    outcome_stages: Mapped[dict[str, str]] = mapped_column(
        JSON, default=dict, server_default=text("'{}'")
    )
    # Bumped to revoke the business's calendar feed links (they are signed with this version).
    calendar_feed_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The last per-business event sequence number handed out (see models/events.py).
    event_seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), default=0, server_default="0"
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'secretary', 'owner')", name="role"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        CheckConstraint("away_kind IN ('meeting', 'vacation', 'away')", name="away_kind"),
        CheckConstraint("addressed_as IN ('plural', 'feminine', 'masculine')", name="addressed_as"),
    )

    id: Mapped[uuid.UUID] = id_column()
    # Kept lower-cased (see the constraint), so the unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str] = mapped_column(String(8), default="he")
    # How the Hebrew interface speaks to this person (console/base/i18n.FORMS).
    addressed_as: Mapped[str] = mapped_column(String(16), default="plural", server_default="plural")
    # Where alerts and reminders reach this person: "email", "sms" or "whatsapp".
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    notify_channel: Mapped[str] = mapped_column(String(16), default="email", server_default="email")
    # What also reaches this person's browsers by Web Push (console/channels/push.py KINDS).
    push_kinds: Mapped[list[str]] = mapped_column(
        JSON,
        default=lambda: ["handoff", "urgent", "breach"],
        server_default=text('\'["handoff", "urgent", "breach"]\''),
    )
    # An owner's availability (console/people/availability.py): away as "meeting", "vacation" or
    # "away" (None: available), until a moment (None: until he says he is back), and a note.
    away_kind: Mapped[str | None] = mapped_column(String(16), default=None)
    away_until: Mapped[datetime | None] = mapped_column(default=None)
    away_note: Mapped[str] = mapped_column(String(200), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SecretaryAssignment(Base):
    """A secretary serves a business; a backup steps in when the usual secretaries are away."""

    __tablename__ = "secretary_assignments"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    is_backup: Mapped[bool] = mapped_column(Boolean, default=False)


class MemberRole(enum.StrEnum):
    """What a person of a business (a user of the owner role) may do there: the permission
    matrix is console/people/business_people.PERMISSIONS."""

    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"


class OwnerMembership(Base):
    """A person of a business (the owner, a manager or staff), who reads it in the portal."""

    __tablename__ = "owner_memberships"
    __table_args__ = (
        CheckConstraint("member_role IN ('owner', 'manager', 'staff')", name="member_role"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    member_role: Mapped[str] = mapped_column(String(16), default="owner", server_default="owner")
