"""What owners say back: a rating of a handled call, and comments on leads and tasks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, id_column, utcnow
from models.tenancy import User


class InteractionRating(Base):
    """The owner's 1–5 stars and comment on one handled call or message; one per interaction,
    changed in place when he rates it again. The agency reads them per secretary (the
    interaction's `user_id`)."""

    __tablename__ = "interaction_ratings"
    __table_args__ = (
        CheckConstraint("stars BETWEEN 1 AND 5", name="stars"),
        Index("ix_interaction_ratings_business_rated", "business_id", "rated_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    interaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("interactions.id", ondelete="CASCADE"), unique=True
    )
    rated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="", server_default="")
    rated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Comment(Base):
    """A comment on a lead (the owner's word on what was handled) or on a task handed to
    someone; a task's comment also names the task's lead, so the lead page lists both in one
    statement for the secretaries."""

    __tablename__ = "comments"
    __table_args__ = (
        CheckConstraint("lead_id IS NOT NULL OR task_id IS NOT NULL", name="subject"),
        Index("ix_comments_lead_created", "lead_id", "created_at"),
        Index("ix_comments_task_created", "task_id", "created_at"),
        # The form's one-time key: a double click comments once.
        Index("uq_comments_business_request_key", "business_id", "request_key", unique=True),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("leads.id", ondelete="CASCADE"), default=None
    )
    task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tasks.id", ondelete="CASCADE"), default=None
    )
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    body: Mapped[str] = mapped_column(Text)
    request_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship(lazy="raise")
