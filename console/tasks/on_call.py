"""A business's on-call rota: who is on call when, the escalation chain after him, and how each
wants to be reached.

Who is on call at a moment: a dated exception for that day (the business's wall date) wins,
then the person set for the business calendar's holidays (and the days its hours close by an
exception) or their eves (the same calendar its covered hours use: console/business/hours.py),
then the weekly pattern's window that holds the moment; otherwise nobody in particular. Pages
go to him first, then down the chain in its order (owner, deputy, ...), each person once. The
admin sets it on `/agency/businesses/{id}/on-call`; the owner reads it in his portal.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.business.hours import BusinessHours
from console.people.audit import Actor, record_change
from models import Business, OwnerMembership, Role, SecretaryAssignment, User
from models.on_call import OnCallRota

REACHES = ("sms", "whatsapp", "email", "push", "call")
NEEDS_PHONE = ("sms", "whatsapp", "call")
DAYS = range(7)  # date.weekday(): Monday 0 ... Sunday 6
DEFAULT_ACK_MINUTES = 10
ACK_BOUNDS = (1, 240)
MAX_ROWS = 30
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


@dataclass(frozen=True)
class Link:
    """One person of the escalation chain and how he is reached."""

    user: str  # the user's id, as hex
    reach: str


@dataclass(frozen=True)
class Shift:
    day: str  # "0".."6", Monday first
    start: str  # "HH:MM", the business's wall time
    end: str
    user: str


@dataclass(frozen=True)
class DatedShift:
    date: str  # "YYYY-MM-DD"
    user: str

    @property
    def shown(self) -> str:
        """The date as Israeli dates read (d.m.yy), in both languages."""
        day = date.fromisoformat(self.date)
        return f"{day.day}.{day.month}.{day:%y}"


@dataclass(frozen=True)
class RotaForm:
    """The rota as stored, or as typed when it was refused."""

    ack_minutes: str = str(DEFAULT_ACK_MINUTES)
    chain: list[Link] = field(default_factory=list)
    weekly: list[Shift] = field(default_factory=list)
    dates: list[DatedShift] = field(default_factory=list)
    holidays: str = ""
    eves: str = ""

    @classmethod
    def of(cls, row: OnCallRota | None) -> RotaForm:
        if row is None:
            return cls()
        return cls(
            str(row.ack_minutes),
            [Link(item["user"], item["reach"]) for item in row.chain],
            [Shift(str(s["day"]), s["start"], s["end"], s["user"]) for s in row.weekly],
            [DatedShift(d["date"], d["user"]) for d in row.dates],
            row.holidays,
            row.eves,
        )


# Built once (every lead page reads it): the business is the parameter `business_id`.
PEOPLE_FOR_HAND_OFF = (
    select(User)
    .where(
        User.active.is_(True),
        or_(
            User.id.in_(
                select(OwnerMembership.user_id).where(
                    OwnerMembership.business_id == bindparam("business_id")
                )
            ),
            User.id.in_(
                select(SecretaryAssignment.user_id).where(
                    SecretaryAssignment.business_id == bindparam("business_id")
                )
            ),
        ),
    )
    .order_by(case((User.role == Role.OWNER, 0), else_=1), User.name)
)


async def people_for_hand_off(session: AsyncSession, business_id: uuid.UUID) -> list[User]:
    """Whom a lead's task can go to, and who can be on call: the business's owners first, then
    its secretaries."""
    return list((await session.scalars(PEOPLE_FOR_HAND_OFF, {"business_id": business_id})).all())


async def rota_of(session: AsyncSession, business_id: uuid.UUID) -> OnCallRota | None:
    return await session.get(OnCallRota, business_id)


async def rota_form(session: AsyncSession, business_id: uuid.UUID) -> RotaForm:
    return RotaForm.of(await rota_of(session, business_id))


def _person(raw: str, people: dict[str, User], field_name: str) -> str:
    value = raw.strip()
    if value not in people:
        raise Invalid("Pick someone who serves the business.", field=field_name)
    return value


def parse(typed: RotaForm, people: dict[str, User]) -> dict[str, Any]:
    """The rota's columns, or Invalid naming the first row and field that is wrong (blank rows
    are left out)."""
    raw = typed.ack_minutes.strip()
    if not raw.isascii() or not raw.isdigit() or not ACK_BOUNDS[0] <= int(raw) <= ACK_BOUNDS[1]:
        raise Invalid(
            "Enter between %(lowest)s and %(highest)s minutes.",
            field="ack_minutes",
            lowest=ACK_BOUNDS[0],
            highest=ACK_BOUNDS[1],
        )
    chain: list[dict[str, str]] = []
    for n, link in enumerate(typed.chain):
        if not link.user.strip():
            continue
        user = _person(link.user, people, f"chain-{n}")
        if user in {item["user"] for item in chain}:
            raise Invalid("Each person once in the chain.", field=f"chain-{n}")
        if link.reach not in REACHES:
            raise Invalid("Pick how to reach this person.", field=f"chain-{n}")
        if link.reach in NEEDS_PHONE and not people[user].phone:
            raise Invalid("This person has no phone number for that.", field=f"chain-{n}")
        chain.append({"user": user, "reach": link.reach})
    weekly: list[dict[str, Any]] = []
    for n, shift in enumerate(typed.weekly):
        if not (shift.user.strip() or shift.start.strip() or shift.end.strip()):
            continue
        user = _person(shift.user, people, f"weekly-{n}")
        if not shift.day.isdigit() or int(shift.day) not in DAYS:
            raise Invalid("Pick a day.", field=f"weekly-{n}")
        start, end = shift.start.strip(), shift.end.strip()
        if not _TIME.match(start) or not _TIME.match(end) or start == "24:00" or end <= start:
            raise Invalid("Enter a start and a later end (HH:MM).", field=f"weekly-{n}")
        weekly.append({"day": int(shift.day), "start": start, "end": end, "user": user})
    dates: list[dict[str, str]] = []
    for n, dated in enumerate(typed.dates):
        if not (dated.user.strip() or dated.date.strip()):
            continue
        user = _person(dated.user, people, f"dates-{n}")
        try:
            day = date.fromisoformat(dated.date.strip())
        except ValueError:
            raise Invalid("Enter a date.", field=f"dates-{n}") from None
        dates.append({"date": day.isoformat(), "user": user})
    if len(chain) > MAX_ROWS or len(weekly) > MAX_ROWS or len(dates) > MAX_ROWS:
        raise Invalid("Too many rows.", field="chain-0")
    holidays = _person(typed.holidays, people, "holidays") if typed.holidays.strip() else ""
    eves = _person(typed.eves, people, "eves") if typed.eves.strip() else ""
    return {
        "ack_minutes": int(raw),
        "chain": chain,
        "weekly": weekly,
        "dates": dates,
        "holidays": holidays,
        "eves": eves,
    }


async def save_rota(
    session: AsyncSession, actor: Actor, business: Business, typed: RotaForm
) -> RotaForm:
    """Check and keep the business's rota; the change is audited. Refused with Invalid (422),
    changing nothing."""
    people = {person.id.hex: person for person in await people_for_hand_off(session, business.id)}
    values = parse(typed, people)
    row = await rota_of(session, business.id)
    if row is None:
        row = OnCallRota(business_id=business.id, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    await record_change(session, actor, "business.on_call", business, **values)
    return RotaForm.of(row)


def on_call_at(rota: OnCallRota, clock: BusinessHours, now: datetime) -> str:
    """The id (hex) of whoever is on call at `now`, or "" when the rota names nobody then."""
    local = now.astimezone(ZoneInfo(str(clock.zone)))
    today = local.date()
    for dated in rota.dates:
        if dated["date"] == today.isoformat():
            return str(dated["user"])
    kind = clock.day_kind(today)
    # A day the business's own calendar closes (an hours exception) is a holiday to the rota.
    if kind in ("holiday", "closed") and rota.holidays:
        return rota.holidays
    if kind == "eve" and rota.eves:
        return rota.eves
    wall = local.strftime("%H:%M")
    for shift in rota.weekly:
        if shift["day"] == today.weekday() and shift["start"] <= wall < shift["end"]:
            return str(shift["user"])
    return ""


def reach_of(user: User) -> str:
    """How to reach someone not in the chain: his own notification channel."""
    return user.notify_channel if user.phone and user.notify_channel in REACHES else "email"


def order_at(rota: OnCallRota, clock: BusinessHours, now: datetime) -> list[tuple[str, str]]:
    """(user hex, reach) in the order pages go at `now`: whoever is on call, then the chain."""
    reach = {link["user"]: link["reach"] for link in rota.chain}
    first = on_call_at(rota, clock, now)
    order = [(first, reach.get(first, ""))] if first else []
    order += [(link["user"], link["reach"]) for link in rota.chain if link["user"] != first]
    return order


async def on_call_now(
    session: AsyncSession, business: Business, clock: BusinessHours, now: datetime
) -> User | None:
    """Whoever the rota has on call now, or else the chain's first (for the owner's portal and
    a call's overflow to the on-call phone)."""
    rota = await rota_of(session, business.id)
    if rota is None:
        return None
    for user_hex, _reach in order_at(rota, clock, now):
        person = await session.get(User, uuid.UUID(hex=user_hex))
        if person is not None and person.active:
            return person
    return None
