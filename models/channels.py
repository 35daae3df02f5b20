"""The agency's provider lines that belong to a business, and its canned replies."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow

LINE_CHANNELS = ("phone", "sms", "whatsapp", "email")


class Line(Base):
    """An address the providers deliver to: a phone number (E.164) for calls or SMS, a WhatsApp
    `phone_number_id`, or a lower-cased e-mail address. A line belongs to one business only."""

    __tablename__ = "lines"
    __table_args__ = (
        UniqueConstraint("channel", "address"),
        CheckConstraint("channel IN ('phone', 'sms', 'whatsapp', 'email')", name="channel"),
        Index("ix_lines_business", "business_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254))
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CannedReply(Base):
    """A ready answer a secretary sends with one click; {contact}, {business} and {secretary}
    are filled in when it is used."""

    __tablename__ = "canned_replies"
    __table_args__ = (UniqueConstraint("business_id", "locale", "title"),)

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    locale: Mapped[str] = mapped_column(String(8), default="he")
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
