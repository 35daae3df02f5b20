"""What a business wants to be reminded of, and when: kept in its task policy's settings.

The reference material's automations, each switched on or off per business with its numbers:
a task's assignee is reminded before its due time and when it is overdue; a lead at the quote
stage is followed up on days 2, 5 and 10; A, B and C customers every 14, 30 and 90 days; and a
contact silent for 90 days is listed as one to win back. Quote and A/B/C reminders are a task
for the business's secretary or a notification to its owners.

A lead or contact waiting for a reminder carries `followup_at`, the next moment to look at it
(never later than the reminder is due), behind a partial index the sweep reads alone.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from models import Business, Contact, Lead, TaskPolicy

SETTINGS_KEY = "reminders"
CLASSES = ("A", "B", "C")
DELIVERIES = ("task", "notification")
MAX_QUOTE_DAYS = 5
MAX_BIRTHDAY_DAYS = 30
BIRTHDAY_HOUR = time(9)  # the reminder's moment, in the business's zone


@dataclass(frozen=True)
class ReminderPolicy:
    task_reminders: bool = True  # how long before the due time is the task policy's column
    quote_followups: bool = True
    quote_days: tuple[int, ...] = (2, 5, 10)
    quote_as: str = "task"
    class_followups: bool = True
    class_days: tuple[int, int, int] = (14, 30, 90)  # A, B, C
    class_as: str = "task"
    silent_list: bool = True
    silent_days: int = 90
    birthday_reminders: bool = True
    birthday_days_before: int = 0
    birthday_as: str = "task"

    def days_for(self, abc_class: str) -> int:
        return self.class_days[CLASSES.index(abc_class)]

    def as_settings(self) -> dict[str, Any]:
        """The JSON kept in `task_policies.settings["reminders"]`."""
        stored = asdict(self)
        stored["quote_days"] = list(self.quote_days)
        stored["class_days"] = dict(zip(CLASSES, self.class_days, strict=True))
        return stored


DEFAULT_POLICY = ReminderPolicy()


def read_policy(row: TaskPolicy | None) -> ReminderPolicy:
    """The business's reminders; anything missing or unreadable in the JSON takes its default."""
    if row is None:
        return DEFAULT_POLICY
    stored = (row.settings or {}).get(SETTINGS_KEY)
    stored = stored if isinstance(stored, dict) else {}
    policy = DEFAULT_POLICY
    try:
        found = {
            name: stored[name]
            for name in (
                "task_reminders",
                "quote_followups",
                "quote_as",
                "class_followups",
                "class_as",
                "silent_list",
                "silent_days",
                "birthday_reminders",
                "birthday_days_before",
                "birthday_as",
            )
            if name in stored
        }
        if "quote_days" in stored:
            found["quote_days"] = tuple(int(day) for day in stored["quote_days"])
        if "class_days" in stored:
            found["class_days"] = tuple(int(stored["class_days"][c]) for c in CLASSES)
        candidate = replace(policy, **found)
        check_policy(candidate)
    except (Invalid, TypeError, ValueError, KeyError):
        return policy
    return candidate


async def reminder_policies(
    session: AsyncSession, business_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ReminderPolicy]:
    """Each business's reminders, in one statement."""
    found = dict.fromkeys(business_ids, DEFAULT_POLICY)
    if business_ids:
        rows = await session.scalars(
            select(TaskPolicy).where(TaskPolicy.business_id.in_(list(business_ids)))
        )
        for row in rows:
            found[row.business_id] = read_policy(row)
    return found


async def reminder_policy(session: AsyncSession, business_id: uuid.UUID) -> ReminderPolicy:
    return read_policy(await session.get(TaskPolicy, business_id))


def check_policy(policy: ReminderPolicy) -> None:
    days = policy.quote_days
    if not 1 <= len(days) <= MAX_QUOTE_DAYS or any(not 1 <= day <= 90 for day in days):
        raise Invalid(
            "Quote follow-ups are one to five days between 1 and 90, e.g. 2, 5, 10.",
            field="quote_days",
        )
    if len(set(days)) != len(days) or list(days) != sorted(days):
        raise Invalid("Give each follow-up day once, in order, e.g. 2, 5, 10.", field="quote_days")
    if any(not 1 <= day <= 730 for day in policy.class_days):
        raise Invalid("A follow-up period is between 1 and 730 days.", field="class_days")
    if not 7 <= policy.silent_days <= 1095:
        raise Invalid("Silence counts from 7 to 1095 days.", field="silent_days")
    if not 0 <= policy.birthday_days_before <= MAX_BIRTHDAY_DAYS:
        raise Invalid(
            "A birthday is remembered on the day or up to 30 days before.",
            field="birthday_days_before",
        )
    if any(d not in DELIVERIES for d in (policy.quote_as, policy.class_as, policy.birthday_as)):
        raise Invalid("A reminder is a task or a notification.", field="quote_as")


def policy_from_form(form: Mapping[str, str]) -> ReminderPolicy:
    """The settings form's fields (a missing checkbox is off); Invalid names a bad field."""

    def number(name: str) -> int:
        try:
            return int(form.get(name, "").strip())
        except ValueError:
            raise Invalid("Enter whole numbers.", field=name) from None

    try:
        quote_days = tuple(int(day) for day in form.get("quote_days", "").split(",") if day.strip())
    except ValueError:
        raise Invalid(
            "Quote follow-ups are one to five days between 1 and 90, e.g. 2, 5, 10.",
            field="quote_days",
        ) from None
    policy = ReminderPolicy(
        task_reminders=bool(form.get("task_reminders")),
        quote_followups=bool(form.get("quote_followups")),
        quote_days=quote_days,
        quote_as=form.get("quote_as", ""),
        class_followups=bool(form.get("class_followups")),
        class_days=(number("class_a_days"), number("class_b_days"), number("class_c_days")),
        class_as=form.get("class_as", ""),
        silent_list=bool(form.get("silent_list")),
        silent_days=number("silent_days"),
        birthday_reminders=bool(form.get("birthday_reminders")),
        birthday_days_before=(
            number("birthday_days_before") if form.get("birthday_days_before", "").strip() else 0
        ),
        birthday_as=form.get("birthday_as") or "task",
    )
    check_policy(policy)
    return policy


async def set_reminder_policy(
    session: AsyncSession, business: Business, policy: ReminderPolicy, *, now: datetime
) -> ReminderPolicy:
    """Keep the business's reminders, and look again at its quotes and classed contacts: the
    next sweep works out what the new numbers make due (each reminder is still written once)."""
    check_policy(policy)
    row = await session.get(TaskPolicy, business.id)
    if row is None:  # the acknowledgement and reminder minutes keep their defaults
        row = TaskPolicy(business_id=business.id, settings={})
        session.add(row)
    row.settings = {**(row.settings or {}), SETTINGS_KEY: policy.as_settings()}
    await session.flush()
    open_quotes = (
        Lead.business_id == business.id,
        Lead.stage == "quote",
        Lead.closed_at.is_(None),
        # Only quotes still inside the follow-up days: an old one is not chased again.
        Lead.stage_changed_at > now - timedelta(days=max(policy.quote_days)),
    )
    classed = (
        Contact.business_id == business.id,
        or_(Contact.abc_class.is_not(None), Contact.birthday.is_not(None)),
    )
    followed = policy.class_followups or policy.birthday_reminders
    await session.execute(
        update(Lead)
        .where(*open_quotes)
        .values(followup_at=now if policy.quote_followups else None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Contact)
        .where(*classed)
        .values(followup_at=now if followed else None)
        .execution_options(synchronize_session=False)
    )
    return policy


def quote_moments(stage_changed_at: datetime, policy: ReminderPolicy) -> list[tuple[int, datetime]]:
    """Each follow-up day of a quote and the moment it falls due."""
    return [(day, stage_changed_at + timedelta(days=day)) for day in policy.quote_days]


async def plan_quote_followups(session: AsyncSession, lead: Lead) -> None:
    """After a stage change: a lead at the quote stage waits for its first follow-up day."""
    if lead.stage != "quote" or lead.closed_at is not None:
        lead.followup_at = None
        return
    policy = await reminder_policy(session, lead.business_id)
    first = quote_moments(lead.stage_changed_at, policy)[0][1]
    lead.followup_at = first if policy.quote_followups else None


def contact_due(contact: Contact, policy: ReminderPolicy) -> datetime | None:
    """When a classed contact's next follow-up is due: a period after the last contact or the
    last reminder, whichever came later; None when unclassed or switched off."""
    if not policy.class_followups or contact.abc_class not in CLASSES:
        return None
    base = max(
        (
            moment
            for moment in (contact.created_at, contact.last_contact_at, contact.followed_up_at)
            if moment is not None
        ),
        default=None,
    )
    if base is None:
        return None
    return base + timedelta(days=policy.days_for(contact.abc_class))


@dataclass(frozen=True)
class Birthday:
    """One birthday of a contact: the reminder's moment, the day, and when the day ends."""

    remind_at: datetime
    day: date
    ends_at: datetime
    age: int


def birthday_due(
    contact: Contact, policy: ReminderPolicy, zone: str, now: datetime
) -> Birthday | None:
    """The contact's birthday whose day has not ended at `now` (its reminder may be due
    already); None without a birthday, erased, or when the business remembers none."""
    if not policy.birthday_reminders or contact.birthday is None or contact.erased_at:
        return None
    tz = ZoneInfo(zone)
    year = now.astimezone(tz).year
    for candidate in (year - 1, year, year + 1):  # a 1 January birthday reminded in December
        day = _birthday_in(contact.birthday, candidate)
        ends = datetime.combine(day + timedelta(days=1), time(0), tz).astimezone(UTC)
        if ends > now:
            remind = datetime.combine(
                day - timedelta(days=policy.birthday_days_before), BIRTHDAY_HOUR, tz
            )
            return Birthday(remind.astimezone(UTC), day, ends, candidate - contact.birthday.year)
    return None


def _birthday_in(born: date, year: int) -> date:
    """The birthday in `year`: 29 February is kept on the 28th in a common year."""
    if born.month == 2 and born.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return born.replace(year=year)


def next_look(
    contact: Contact, policy: ReminderPolicy, zone: str, now: datetime
) -> datetime | None:
    """The contact's `followup_at`: its A/B/C follow-up or its birthday reminder, the sooner."""
    moments = [contact_due(contact, policy)]
    birthday = birthday_due(contact, policy, zone, now)
    moments.append(birthday.remind_at if birthday else None)
    return min((m for m in moments if m is not None), default=None)


async def plan_contact_followups(
    session: AsyncSession, contact: Contact, *, now: datetime | None = None
) -> None:
    """After a class or birthday change: when the contact is next looked at."""
    policy = await reminder_policy(session, contact.business_id)
    business = await session.get_one(Business, contact.business_id)
    contact.followup_at = next_look(contact, policy, business.timezone, now or datetime.now(UTC))
