"""What a business pays the agency: its plan, from a month on (a change starts a new row, so a
past month's statement keeps the plan it had)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, id_column, utcnow


class BillingPlan(Base):
    """A business's plan from the month `starts_on` (its first day) until the next row's: a
    monthly fee, what it includes, and the price of each unit beyond. Money is whole agorot
    (1/100 ILS) before VAT."""

    __tablename__ = "billing_plans"
    __table_args__ = (
        UniqueConstraint("business_id", "starts_on"),
        CheckConstraint(
            "monthly_fee_agorot >= 0 AND included_calls >= 0 AND included_minutes >= 0"
            " AND included_messages >= 0 AND call_price_agorot >= 0"
            " AND minute_price_agorot >= 0 AND message_price_agorot >= 0",
            name="not_negative",
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    business_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    starts_on: Mapped[date]
    monthly_fee_agorot: Mapped[int] = mapped_column(Integer)
    included_calls: Mapped[int] = mapped_column(Integer)
    included_minutes: Mapped[int] = mapped_column(Integer)
    included_messages: Mapped[int] = mapped_column(Integer)
    call_price_agorot: Mapped[int] = mapped_column(Integer)
    minute_price_agorot: Mapped[int] = mapped_column(Integer)
    message_price_agorot: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
