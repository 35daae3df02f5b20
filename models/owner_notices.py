"""What an owner is told and when: a message after each call, quiet hours, his language, and his
morning digest. A row without a person is the business's default; a person's own row wins."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow

DIGEST_SECTIONS = ("handled", "tasks", "numbers", "surveys")


class OwnerNotices(Base):
    __tablename__ = "owner_notices"
    __table_args__ = (
        CheckConstraint("calls IN ('every', 'urgent', 'none')", name="calls"),
        CheckConstraint(
            "digest_channel IN ('', 'email', 'sms', 'whatsapp')", name="digest_channel"
        ),
        # one default per business, one row per person and business
        Index(
            "uq_owner_notices_business",
            "business_id",
            unique=True,
            sqlite_where=text("user_id IS NULL"),
            postgresql_where=text("user_id IS NULL"),
        ),
        Index(
            "uq_owner_notices_person",
            "business_id",
            "user_id",
            unique=True,
            sqlite_where=text("user_id IS NOT NULL"),
            postgresql_where=text("user_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), default=None
    )
    # After each call: every call, urgent ones only (high or urgent priority), or none.
    calls: Mapped[str] = mapped_column(String(8), default="every")
    # Quiet hours in the business's wall time, "HH:MM" ("" both: none); a message due in them
    # waits for their end.
    quiet_from: Mapped[str] = mapped_column(String(5), default="")
    quiet_to: Mapped[str] = mapped_column(String(5), default="")
    # The language of his messages ("": his interface's).
    language: Mapped[str] = mapped_column(String(8), default="")
    # The daily digest: the hour it goes (business's wall time), its channel ("": e-mail) and
    # what it holds (DIGEST_SECTIONS).
    digest_hour: Mapped[int] = mapped_column(Integer, default=7)
    digest_channel: Mapped[str] = mapped_column(String(16), default="")
    digest_sections: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(DIGEST_SECTIONS))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
