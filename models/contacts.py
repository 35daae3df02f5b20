"""The customer card: one person who contacted one business."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow

CHANNELS = ("phone", "whatsapp", "sms", "email", "web", "walk-in")


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        # One person per business by phone (E.164) and by lower-cased e-mail; NULLs do not clash.
        Index("uq_contacts_business_phone", "business_id", "phone", unique=True),
        Index("uq_contacts_business_email", "business_id", "email", unique=True),
        Index("ix_contacts_business_name", "business_id", "name"),
        # The "we miss you" list: a business's contacts by their last contact.
        Index("ix_contacts_business_last_contact", "business_id", "last_contact_at"),
        # The A/B/C follow-up reminders: only classed contacts waiting for one are in it.
        Index(
            "ix_contacts_followup",
            "followup_at",
            sqlite_where=text("followup_at IS NOT NULL"),
            postgresql_where=text("followup_at IS NOT NULL"),
        ),
        CheckConstraint("abc_class IN ('A', 'B', 'C')", name="abc_class"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(20), default=None)
    email: Mapped[str | None] = mapped_column(String(254), default=None)
    company: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    industry: Mapped[str] = mapped_column(String(100), default="")
    birthday: Mapped[date | None] = mapped_column(Date, default=None)
    preferred_channel: Mapped[str | None] = mapped_column(String(16), default=None)
    # The language messages to the contact are written in (None: the business's).
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    abc_class: Mapped[str | None] = mapped_column(String(1), default=None)
    # Set by a person: the computed A/B/C class no longer replaces it.
    abc_class_locked: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Privacy: when the contact was erased on request (the row stays, anonymised).
    erased_at: Mapped[datetime | None] = mapped_column(default=None)
    # The day of the contact's first lead (filled by it; an earlier day typed or imported stays).
    customer_since: Mapped[date | None] = mapped_column(Date, default=None)
    # What the customer bought before the business kept leads here (typed or imported); the
    # lifetime value is it plus the won deals (`contacts.refresh_lifetime_value`).
    earlier_value: Mapped[Decimal] = mapped_column(
        Numeric(12, 2), default=Decimal(0), server_default="0"
    )
    lifetime_value: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal(0))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_contact_at: Mapped[datetime | None] = mapped_column(default=None)
    # A/B/C follow-ups and birthday reminders: the next moment to look (never later than a
    # reminder is due), and the last A/B/C reminder written; a period counts from it or from the
    # last contact, the later.
    followup_at: Mapped[datetime | None] = mapped_column(default=None)
    followed_up_at: Mapped[datetime | None] = mapped_column(default=None)
