"""Changes that commit the agency need the agency: an owner asking for 24/7 coverage, for
hours beyond the agency's contract (the week it agreed to cover: `Business.contract_hours`,
else the week as it is), or for another time zone makes a request that an admin approves (the
change is made, and the contract grows to it) or declines. Inside the contract, his change is
made at once. Every step is audited."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from console.agency.business_hours import (
    Moved,
    TypedException,
    TypedHours,
    add_exception,
    check_exception,
    check_hours,
    date_label,
    day_name,
    local_today,
    save_hours,
)
from console.base.errors import Conflict, Invalid, NotFound
from console.base.i18n import gettext as _
from console.business.hours import DAY_KEYS
from console.people.audit import Actor, record_change
from console.people.tenancy import parse_id
from models import Business, ChangeRequest, User

REASONS = ("always_open", "beyond_contract", "timezone")
MAX_NOTE = 500
# date.weekday() order, to name a date's day of the week as the weekly hours do
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes) or 0


def _span(window: list[str]) -> tuple[int, int]:
    start, end = _minutes(window[0]), _minutes(window[1])
    return start, end or 24 * 60  # an end of 00:00 is midnight at the end of the day


def beyond(windows: list[list[str]], contract: list[list[str]]) -> bool:
    """Whether any minute of `windows` lies outside the contract's windows of that day
    (adjacent contract windows count as one)."""
    merged: list[list[int]] = []
    for start, end in sorted(_span(w) for w in contract):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return any(
        not any(c_start <= start and end <= c_end for c_start, c_end in merged)
        for start, end in (_span(w) for w in windows)
    )


def contract_of(business: Business) -> dict[str, list[list[str]]]:
    contract = business.contract_hours or business.weekly_hours or {}
    return {day: list(contract.get(day) or []) for day in DAY_KEYS}


def reasons_for(
    business: Business, week: dict[str, list[list[str]]], zone: str, always_open: bool
) -> list[str]:
    """Why this week, zone and 24/7 need the agency (empty: they do not)."""
    contract = contract_of(business)
    reasons = []
    if always_open and not business.always_open:
        reasons.append("always_open")
    covered_now = not always_open and not business.always_open
    if covered_now and any(beyond(week[day], contract[day]) for day in DAY_KEYS):
        reasons.append("beyond_contract")
    if zone != business.timezone:
        reasons.append("timezone")
    return reasons


async def owner_saves_hours(
    session: AsyncSession, actor: Actor, business: Business, typed: TypedHours
) -> Moved | ChangeRequest:
    """His week: made at once inside the contract, else a request to the agency."""
    week, zone = check_hours(typed)
    reasons = reasons_for(business, week, zone, typed.always_open)
    if not reasons:
        if business.contract_hours is None:  # the week he narrows stays the agency's contract
            business.contract_hours = business.weekly_hours
        return await save_hours(session, actor, business, typed)
    asked = {"kind": "hours", "timezone": zone, "always_open": typed.always_open, "week": week}
    return await _ask(session, actor, business, asked, reasons)


async def owner_adds_exception(
    session: AsyncSession, actor: Actor, business: Business, typed: TypedException
) -> Moved | ChangeRequest:
    """A closed date is his to set; special hours beyond the contract's hours of that day of
    the week are a request to the agency."""
    day, windows = check_exception(typed, today=local_today(business, actor.now))
    contract = contract_of(business)[_WEEKDAYS[day.weekday()]]
    if windows is None or business.always_open or not beyond(windows, contract):
        return await add_exception(session, actor, business, typed)
    asked = {"kind": "exception", "date": day.isoformat(), "windows": windows}
    return await _ask(session, actor, business, asked, ["beyond_contract"])


async def _ask(
    session: AsyncSession,
    actor: Actor,
    business: Business,
    asked: dict[str, Any],
    reasons: list[str],
) -> ChangeRequest:
    """A new request replaces his business's earlier pending one of the same kind."""
    await session.execute(
        update(ChangeRequest)
        .where(
            ChangeRequest.business_id == business.id,
            ChangeRequest.kind == asked["kind"],
            ChangeRequest.state == "pending",
        )
        .values(state="withdrawn", decided_at=actor.now)
        .execution_options(synchronize_session=False)
    )
    request = ChangeRequest(
        business_id=business.id,
        kind=asked["kind"],
        asked=asked,
        reasons=reasons,
        state="pending",
        requested_by_id=actor.user.id if actor.user else None,
        requested_at=actor.now,
        note="",
    )
    session.add(request)
    await session.flush()
    await record_change(
        session, actor, "change_request.made", business, request=str(request.id), reasons=reasons
    )
    return request


async def decide(
    session: AsyncSession, actor: Actor, request_id: str, *, approve: bool, note: str
) -> ChangeRequest:
    """The admin's answer: approved, the change is made (and the contract grows to it);
    declined, nothing changes. Decided once (409 after)."""
    request = await session.get(ChangeRequest, parse_id(request_id), with_for_update=True)
    if request is None:
        raise NotFound("No such request.")
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise Invalid("The note may be at most %(n)s characters.", field="note", n=MAX_NOTE)
    if request.state != "pending":
        raise Conflict("This request was answered already.")
    business = await session.get(Business, request.business_id)
    if business is None:
        raise NotFound("No such business.")
    if approve:
        await _apply(session, actor, business, request.asked)
    request.state = "approved" if approve else "declined"
    request.decided_by_id = actor.user.id if actor.user else None
    request.decided_at = actor.now
    request.note = note
    await session.flush()
    action = "change_request.approved" if approve else "change_request.declined"
    await record_change(session, actor, action, business, request=str(request.id))
    return request


async def _apply(
    session: AsyncSession, actor: Actor, business: Business, asked: dict[str, Any]
) -> None:
    if asked.get("kind") == "exception":
        windows = [tuple(w) for w in asked["windows"]]
        typed = TypedException(asked["date"], closed=False, windows=windows)
        if date.fromisoformat(asked["date"]) < local_today(business, actor.now):
            raise Conflict("This date has passed: decline the request.")
        await add_exception(session, actor, business, typed)
        return
    week = {day: [(w[0], w[1]) for w in windows] for day, windows in asked["week"].items()}
    typed_hours = TypedHours(asked["timezone"], bool(asked["always_open"]), week)
    await save_hours(session, actor, business, typed_hours, contract=True)


@dataclass(frozen=True)
class RequestRow:
    request: ChangeRequest
    business: Business
    requested_by: str
    decided_by: str

    @property
    def asked_lines(self) -> list[str]:
        """What is asked, in words of the reader's language: the zone, 24/7, each day."""
        asked = self.request.asked
        if asked.get("kind") == "exception":
            day = date.fromisoformat(asked["date"])
            hours = ", ".join(f"{s}–{e}" for s, e in asked["windows"])
            return [f"{date_label(day)}: {hours}"]
        lines = [_("Time zone: %(zone)s") % {"zone": asked["timezone"]}]
        if asked.get("always_open"):
            lines.append(_("Around the clock (24/7)"))
        else:
            for key in DAY_KEYS:
                windows = asked["week"].get(key) or []
                hours = ", ".join(f"{s}–{e}" for s, e in windows) or _("Closed")
                lines.append(f"{day_name(key)}: {hours}")
        return lines


async def requests(
    session: AsyncSession, *, business_id: uuid.UUID | None = None, limit: int = 50
) -> list[RequestRow]:
    """Pending first, then the latest answered; of one business or of all (one statement)."""
    asker, decider = aliased(User), aliased(User)
    statement = (
        select(ChangeRequest, Business, asker.name, decider.name)
        .join(Business, Business.id == ChangeRequest.business_id)
        .outerjoin(asker, asker.id == ChangeRequest.requested_by_id)
        .outerjoin(decider, decider.id == ChangeRequest.decided_by_id)
        .order_by(ChangeRequest.state != "pending", ChangeRequest.requested_at.desc())
        .limit(limit)
    )
    if business_id is not None:
        statement = statement.where(ChangeRequest.business_id == business_id)
    rows = (await session.execute(statement)).all()
    return [RequestRow(r, b, a or "", d or "") for r, b, a, d in rows]
