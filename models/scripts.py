"""A business's procedure for the secretary, versioned: one draft, many published versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow

QUESTION_KINDS = ("text", "choice", "phone", "date", "yesno")


class Script(Base):
    __tablename__ = "scripts"
    __table_args__ = (
        UniqueConstraint("business_id", "version"),
        CheckConstraint("status IN ('draft', 'published')", name="status"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    # "שלום, הגעתם ל{business}, מדברת {secretary}. במה אפשר לעזור, {contact}?"
    greeting: Mapped[str] = mapped_column(Text, default="")
    # [{"id": "q1", "text": ..., "kind": "text|choice|phone|date|yesno", "required": bool,
    #   "choices": [...]}], in the order they are asked
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    faq: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)  # [{"q", "a"}]
    escalation: Mapped[list[dict[str, str]]] = mapped_column(
        JSON, default=list
    )  # [{"when","whom","how"}]
    dos: Mapped[str] = mapped_column(Text, default="")
    donts: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
