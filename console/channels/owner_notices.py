"""What each owner is told and when (models/owner_notices.py): a message after every call,
urgent calls only, or none; quiet hours; his language; his digest's hour, channel and content.
A business has a default row (no person), a person may have his own; his wins as a whole."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.base.i18n import LOCALES
from models import OwnerNotices
from models.owner_notices import DIGEST_SECTIONS

CALLS = ("every", "urgent", "none")
DIGEST_CHANNELS = ("", "email", "sms", "whatsapp")
URGENT_PRIORITIES = ("high", "urgent")
CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Notices:
    """One person's settings as they apply (his own row, else the business's, else these)."""

    calls: str = "every"
    quiet_from: str = ""
    quiet_to: str = ""
    language: str = ""
    digest_hour: int = 7
    digest_channel: str = ""
    digest_sections: tuple[str, ...] = DIGEST_SECTIONS
    own: bool = False  # his own row, not the business's default

    def wants_call(self, priority: str) -> bool:
        return self.calls == "every" or (self.calls == "urgent" and priority in URGENT_PRIORITIES)

    def quiet_until(self, timezone: str, now: datetime) -> datetime | None:
        """The end of the quiet hours he is in now (the business's wall time), else None."""
        if not self.quiet_from or not self.quiet_to or self.quiet_from == self.quiet_to:
            return None
        zone = ZoneInfo(timezone)
        local = now.astimezone(zone)
        start, end = time.fromisoformat(self.quiet_from), time.fromisoformat(self.quiet_to)
        moment = local.time().replace(tzinfo=None)
        # across midnight (22:00-07:00) it is the hours after the start or before the end
        inside = start <= moment < end if start < end else moment >= start or moment < end
        if not inside:
            return None
        day = local.date() if moment < end else local.date() + timedelta(days=1)
        return datetime.combine(day, end, tzinfo=zone)


@dataclass
class NoticeForm:
    """The settings as typed (strings), kept to show the form again when refused."""

    calls: str = "every"
    quiet_from: str = ""
    quiet_to: str = ""
    language: str = ""
    digest_hour: str = "7"
    digest_channel: str = ""
    digest_sections: list[str] = field(default_factory=lambda: list(DIGEST_SECTIONS))

    @classmethod
    def of(cls, notices: Notices) -> NoticeForm:
        return cls(
            notices.calls,
            notices.quiet_from,
            notices.quiet_to,
            notices.language,
            str(notices.digest_hour),
            notices.digest_channel,
            list(notices.digest_sections),
        )


def _of_row(row: OwnerNotices, *, own: bool) -> Notices:
    return Notices(
        row.calls,
        row.quiet_from,
        row.quiet_to,
        row.language,
        row.digest_hour,
        row.digest_channel,
        tuple(s for s in row.digest_sections if s in DIGEST_SECTIONS),
        own,
    )


async def notices_for(
    session: AsyncSession, pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], Notices]:
    """The settings that apply to each (business, person), in one statement."""
    wanted = set(pairs)
    if not wanted:
        return {}
    business_ids = {business_id for business_id, _user in wanted}
    user_ids = {user_id for _business, user_id in wanted}
    rows = await session.scalars(
        select(OwnerNotices).where(
            OwnerNotices.business_id.in_(business_ids),
            or_(OwnerNotices.user_id.is_(None), OwnerNotices.user_id.in_(user_ids)),
        )
    )
    defaults: dict[uuid.UUID, Notices] = {}
    own: dict[tuple[uuid.UUID, uuid.UUID], Notices] = {}
    for row in rows:
        if row.user_id is None:
            defaults[row.business_id] = _of_row(row, own=False)
        else:
            own[(row.business_id, row.user_id)] = _of_row(row, own=True)
    return {pair: own.get(pair) or defaults.get(pair[0]) or Notices() for pair in wanted}


async def business_default(session: AsyncSession, business_id: uuid.UUID) -> Notices:
    row = await session.scalar(
        select(OwnerNotices).where(
            OwnerNotices.business_id == business_id, OwnerNotices.user_id.is_(None)
        )
    )
    return _of_row(row, own=False) if row else Notices()


def checked(typed: NoticeForm) -> Notices:
    """The typed settings, or Invalid naming the field."""
    if typed.calls not in CALLS:
        raise Invalid("Choose when to be told of a call.", field="calls")
    for name in ("quiet_from", "quiet_to"):
        value = getattr(typed, name).strip()
        if value and not CLOCK.match(value):
            raise Invalid("Enter a time as HH:MM, from 00:00 to 23:59.", field=name)
    quiet_from, quiet_to = typed.quiet_from.strip(), typed.quiet_to.strip()
    if bool(quiet_from) != bool(quiet_to):
        raise Invalid("Quiet hours need a start and an end.", field="quiet_to")
    if typed.language not in ("", *LOCALES):
        raise Invalid("Unknown language.", field="language")
    try:
        hour = int(typed.digest_hour.strip())
    except ValueError:
        hour = -1
    if not 0 <= hour <= 23:
        raise Invalid("Enter an hour from 0 to 23.", field="digest_hour")
    if typed.digest_channel not in DIGEST_CHANNELS:
        raise Invalid("Unknown channel.", field="digest_channel")
    if any(section not in DIGEST_SECTIONS for section in typed.digest_sections):
        raise Invalid("Unknown part of the digest.", field="digest_sections")
    sections = tuple(s for s in DIGEST_SECTIONS if s in typed.digest_sections)
    return Notices(
        typed.calls, quiet_from, quiet_to, typed.language, hour, typed.digest_channel, sections
    )


async def save_notices(
    session: AsyncSession,
    business_id: uuid.UUID,
    user_id: uuid.UUID | None,
    typed: NoticeForm,
    *,
    now: datetime,
) -> Notices:
    """Keep the settings of a person (or, without one, the business's default) as typed;
    refused with Invalid naming the field, nothing written."""
    notices = checked(typed)
    row = await session.scalar(
        select(OwnerNotices).where(
            OwnerNotices.business_id == business_id,
            OwnerNotices.user_id.is_(None) if user_id is None else OwnerNotices.user_id == user_id,
        )
    )
    if row is None:
        row = OwnerNotices(business_id=business_id, user_id=user_id)
        session.add(row)
    row.calls, row.quiet_from, row.quiet_to = notices.calls, notices.quiet_from, notices.quiet_to
    row.language, row.digest_hour = notices.language, notices.digest_hour
    row.digest_channel, row.digest_sections = notices.digest_channel, list(notices.digest_sections)
    row.updated_at = now
    await session.flush()
    return notices
