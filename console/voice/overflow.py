"""A business's overflow rules: where a call goes when nobody takes it.

Three moments, each with its own action: nobody free within the wait limit (the call settings'
`wait_limit_seconds`), a call outside the covered hours, a call on a holiday of the business's
calendar. The actions: voicemail, the on-call person's phone (console/tasks/on_call.py), another
business's team, or a call-back lead (what an overflow has always been). Outside hours and on a
holiday "" means the call rings the secretaries as usual. The admin sets them on the business's
page; the owner reads them in his portal; `routing.decide` reads them where it decides overflow
and the SIP server's answer carries the action and where (`action=overflow;to=voicemail`,
`to=on_call;number=+972…`, `to=business;line=+972…`). The voice side
of voicemail and transfers comes later: until then the SIP server ends such a call as before,
and the lead is a call-back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.business.hours import BusinessHours
from console.contacts.contacts import normalise_phone
from console.people.audit import Actor, record_change
from console.sla.sla import clock_for
from console.tasks.on_call import on_call_now, rota_of
from models import Business, Line
from models.on_call import OVERFLOW_ACTIONS, OverflowRule

MOMENTS = ("waiting", "closed", "holiday")


@dataclass(frozen=True)
class OverflowForm:
    """The rules as stored, or as typed when they were refused."""

    waiting: str = ""
    closed: str = ""
    holiday: str = ""
    other_business_id: str = ""

    @classmethod
    def of(cls, row: OverflowRule | None) -> OverflowForm:
        if row is None:
            return cls()
        other = str(row.other_business_id) if row.other_business_id else ""
        return cls(row.waiting, row.closed, row.holiday, other)

    def actions(self) -> list[tuple[str, str]]:
        """(moment, action) for the owner's portal: what happens when."""
        return [(moment, getattr(self, moment)) for moment in MOMENTS]


async def overflow_form(session: AsyncSession, business_id: uuid.UUID) -> OverflowForm:
    return OverflowForm.of(await session.get(OverflowRule, business_id))


async def other_businesses(session: AsyncSession, business: Business) -> list[Business]:
    """Whose team a call may overflow to: the agency's other active businesses."""
    statement = (
        select(Business)
        .where(Business.active.is_(True), Business.id != business.id)
        .order_by(Business.name)
    )
    return list((await session.scalars(statement)).all())


async def save_overflow(
    session: AsyncSession, actor: Actor, business: Business, typed: OverflowForm
) -> OverflowForm:
    """Check and keep the rules; the change is audited. Refused with Invalid (422), naming the
    field, for an unknown action, another business that is not one, or the on-call phone of a
    business with no rota."""
    values: dict[str, str] = {}
    for moment in MOMENTS:
        action = getattr(typed, moment).strip()
        if action and action not in OVERFLOW_ACTIONS:
            raise Invalid("Pick one of the actions.", field=moment)
        values[moment] = action
    chosen = set(values.values())
    other: uuid.UUID | None = None
    if "business" in chosen:
        others = {str(b.id): b for b in await other_businesses(session, business)}
        if typed.other_business_id.strip() not in others:
            raise Invalid(
                "Pick the business whose team takes the calls.", field="other_business_id"
            )
        other = others[typed.other_business_id.strip()].id
    if "on_call" in chosen and await rota_of(session, business.id) is None:
        field = next(moment for moment in MOMENTS if values[moment] == "on_call")
        raise Invalid("Set the on-call rota first.", field=field)
    row = await session.get(OverflowRule, business.id)
    if row is None:
        row = OverflowRule(business_id=business.id)
        session.add(row)
    row.waiting, row.closed, row.holiday = values["waiting"], values["closed"], values["holiday"]
    row.other_business_id = other
    await session.flush()
    await record_change(
        session, actor, "business.overflow", business, **values, other_business=str(other or "")
    )
    return OverflowForm.of(row)


def moment_rule(closed: str, holiday: str, clock: BusinessHours, now: datetime) -> str:
    """The action for a call arriving `now` outside the hours or on a holiday, or "" when the
    call rings as usual."""
    today = now.astimezone(clock.zone).date()
    if holiday and clock.day_kind(today) == "holiday":
        return holiday
    if closed and not clock.is_open(now):
        return closed
    return ""


async def destination(
    session: AsyncSession,
    business: Business,
    to: str,
    other_business_id: uuid.UUID | None,
    *,
    now: datetime,
) -> str:
    """What the SIP server needs to carry an overflow out: the number of whoever is on call now
    (`;number=`), or the other business's phone line (`;line=`); "" when there is none."""
    if to == "on_call":
        person = await on_call_now(session, business, clock_for(business), now)
        if person is not None and person.phone:
            try:
                return f";number={normalise_phone(person.phone)}"
            except Invalid:
                return ""
    if to == "business" and other_business_id is not None:
        line = await session.scalar(
            select(Line.address)
            .where(Line.business_id == other_business_id, Line.channel == "phone")
            .order_by(Line.address)
            .limit(1)
        )
        if line:
            return f";line={line}"
    return ""
