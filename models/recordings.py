"""Call recordings and voicemail messages, and each business's recording settings.

The audio itself is kept once, in the recordings store (a folder or an S3-compatible bucket,
console/voice/storage.py); a row here says whose it is (business, lead, call), where it is
(`key`), what it is and how long. Who may play it is whoever may see its lead."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column

RECORDING_KINDS = ("call", "voicemail")
DEFAULT_VOICEMAIL_SECONDS = 120  # a voicemail message's longest, unless the business says


class Recording(Base):
    __tablename__ = "recordings"
    __table_args__ = (
        CheckConstraint(f"kind IN {RECORDING_KINDS}", name="kind"),
        Index("ix_recordings_lead", "lead_id"),
        Index("uq_recordings_key", "key", unique=True),
        Index("uq_recordings_sip_call", "sip_call_id", unique=True),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    call_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("calls.id", ondelete="SET NULL"), default=None
    )
    # The SIP call (leg) it was recorded from: the call's own, or the caller's leg to another
    # secretary the call was put through to (a second recording of the same call and lead).
    sip_call_id: Mapped[str | None] = mapped_column(String(200), default=None)
    kind: Mapped[str] = mapped_column(String(10))
    key: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column()


class RecordingSettings(Base):
    """Per business: whether its calls are recorded, the announcement the caller hears first
    (optional), and the voicemail greeting; the two sounds are uploaded by the agency and kept
    in the recordings store under `*_key`."""

    __tablename__ = "recording_settings"

    business_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    record_calls: Mapped[bool] = mapped_column(Boolean, default=False)
    announcement_key: Mapped[str | None] = mapped_column(String(200), default=None)
    greeting_key: Mapped[str | None] = mapped_column(String(200), default=None)
    # The longest voicemail message (seconds): the SIP server ends the call then, and the kept
    # message is cut there (console/voice/voicemail.py).
    voicemail_max_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_VOICEMAIL_SECONDS)
