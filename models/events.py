"""What happened, per business and in order: the outbox the live consoles are fed from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("business_id", "seq"),
        Index("ix_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    # Gapless per business: taken from businesses.event_seq in the writing transaction.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    kind: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
