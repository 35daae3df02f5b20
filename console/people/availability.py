"""An owner's availability: "in a meeting until 14:00", "on vacation until Sunday".

A status holds until its end (nothing runs to end it: every reader compares the end with the
clock, so it is over by itself) or until he says he is back. While it holds:
- the secretaries see it on the lead page, beside the hand-off form, and the owner's name in
  the hand-off list says so;
- what is sent to him as a person (hand-offs, their reminders, follow-up reminders: everything
  that goes through `task_notices.notify_user`) is queued for the moment the status ends,
  not sent now; a status with no end holds them for at most `HOLD_WITHOUT_END`, and saying he
  is back (or changing the status) moves them to the new moment;
- breach notices (`breach_notices.tell_owners`) are not sent to him at all: a lead waiting too
  long is the agency's to fix now, and the admins see the breach on the alerts panel at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, format_time
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit
from console.base.errors import Invalid, NotFound
from console.base.i18n import babel_locale
from console.base.i18n import gettext as _
from console.base.scheduler import RunSoon
from models import Notification, User

KINDS = ("meeting", "vacation", "away")
NOTE_LENGTH = 200
MAX_AHEAD = timedelta(days=366)
# How long notices wait for an owner whose status has no end, unless he comes back sooner.
HOLD_WITHOUT_END = timedelta(days=7)


@dataclass(frozen=True)
class Away:
    """A status that holds now."""

    kind: str
    until: datetime | None
    note: str


def away_now(user: User, now: datetime) -> Away | None:
    """The user's status if it holds at `now`; None when he is available."""
    if user.away_kind is None:
        return None
    if user.away_until is not None and user.away_until <= now:
        return None
    return Away(user.away_kind, user.away_until, user.away_note)


def held_until(user: User, now: datetime) -> datetime | None:
    """When a notice for him, queued now, should go out; None for at once."""
    away = away_now(user, now)
    if away is None:
        return None
    return away.until or now + HOLD_WITHOUT_END


def describe(away: Away, timezone: str, now: datetime) -> str:
    """'In a meeting until 14:00', 'On vacation until Sunday 09:00', in the reader's language
    and the business's wall time."""
    if away.until is None:
        return {"meeting": _("In a meeting"), "vacation": _("On vacation")}.get(
            away.kind, _("Unavailable")
        )
    zone = ZoneInfo(timezone)
    locale = babel_locale()
    local, today = away.until.astimezone(zone), now.astimezone(zone).date()
    if local.date() == today:
        until = format_time(local, "HH:mm", locale=locale)
    elif local.date() - today < timedelta(days=7):
        until = format_datetime(local, "EEEE HH:mm", locale=locale)
    else:
        until = format_datetime(local, "d MMMM yyyy HH:mm", locale=locale)
    template = {
        "meeting": _("In a meeting until %(until)s"),
        "vacation": _("On vacation until %(until)s"),
    }.get(away.kind, _("Unavailable until %(until)s"))
    return template % {"until": until}


def parse_until(value: str, timezone: str) -> datetime | None:
    """The end as typed in a `datetime-local` input (the business's wall time), as UTC."""
    if not value.strip():
        return None
    try:
        local = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid("Enter the end as a date and time.", field="until") from None
    return local.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


async def set_availability(
    session: AsyncSession,
    user: User,
    *,
    kind: str,
    until: str = "",
    note: str = "",
    timezone: str,
    now: datetime,
) -> Away | None:
    """Set the user's status (`kind` "" means he is available again); the notices held for him
    move to the new end, or go now. Refused with 422, changing nothing, for an unknown kind, an
    end that has passed or is more than a year ahead, or a note too long."""
    kind = kind.strip()
    if kind and kind not in KINDS:
        raise Invalid("Pick one of the statuses.", field="kind")
    ends = parse_until(until, timezone) if kind else None
    if ends is not None and ends <= now:
        raise Invalid("That time has passed: give an end in the future.", field="until")
    if ends is not None and ends > now + MAX_AHEAD:
        raise Invalid("A status may last at most a year.", field="until")
    note = " ".join(note.split())
    if len(note) > NOTE_LENGTH:
        raise Invalid("The note is too long.", field="note")
    person = await session.get(User, user.id, populate_existing=True)
    if person is None:
        raise NotFound("Not found.")
    person.away_kind = kind or None
    person.away_until = ends
    person.away_note = note if kind else ""
    await session.flush()
    await move_held_notices(session, person, now=now)
    return away_now(person, now)


async def move_held_notices(session: AsyncSession, user: User, *, now: datetime) -> None:
    """The notices waiting for his return go at the new end of his status, or now. A held
    notice is one never tried whose time is still ahead (a retry has counted an attempt)."""
    moment = held_until(user, now) or now
    await session.execute(
        update(Notification)
        .where(
            Notification.user_id == user.id,
            Notification.status == "queued",
            Notification.attempts == 0,
            Notification.next_attempt_at > now,
        )
        .values(next_attempt_at=moment)
        .execution_options(synchronize_session=False)
    )
    if moment <= now:
        after_commit(session, RunSoon("send_notifications"))


@dataclass(frozen=True)
class OwnerAway:
    """An owner who is away, as the secretaries read it."""

    user: User
    text: str
    note: str


def owners_away(owners: list[User], timezone: str, now: datetime) -> list[OwnerAway]:
    found = []
    for owner in owners:
        away = away_now(owner, now)
        if away is not None:
            found.append(OwnerAway(owner, describe(away, timezone, now), away.note))
    return found


def default_until(timezone: str, now: datetime) -> str:
    """The form's suggestion: the next full hour after an hour from now, as wall time."""
    moment = (now + timedelta(hours=1)).astimezone(ZoneInfo(timezone))
    moment = moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H:%M")
