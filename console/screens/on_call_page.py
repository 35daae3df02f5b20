"""What the owner's portal shows of his business's on-call rota and overflow rules (read only:
the agency sets them): who is on call now, the chain and how each is reached, the week, the
holidays and dated exceptions, and where a call goes when nobody can answer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from console.people.tenancy import get_business
from console.sla.sla import clock_for
from console.tasks.on_call import RotaForm, on_call_now, people_for_hand_off, rota_form
from console.voice.overflow import OverflowForm, overflow_form
from models import Business, User


@dataclass(frozen=True)
class OnCallPage:
    business: Business
    rota: RotaForm
    names: dict[str, str]  # user hex -> name
    now_on_call: User | None
    rules: OverflowForm
    other_business: Business | None


async def on_call_page(
    session: AsyncSession, user: User, business_id: str | uuid.UUID, *, now: datetime
) -> OnCallPage:
    """For one of his businesses (another's: 404)."""
    business = await get_business(session, user, business_id)
    people = await people_for_hand_off(session, business.id)
    rules = await overflow_form(session, business.id)
    other = None
    if rules.other_business_id:
        other = await session.get(Business, uuid.UUID(rules.other_business_id))
    return OnCallPage(
        business=business,
        rota=await rota_form(session, business.id),
        names={person.id.hex: person.name for person in people},
        now_on_call=await on_call_now(session, business, clock_for(business), now),
        rules=rules,
        other_business=other,
    )
