"""A business's call settings, as the admin sets them on the business's page: how long a call
rings one secretary, how long it may wait for a free one before it overflows, and how long a
secretary's wrap-up lasts after its calls, and the N of its service level (the share of calls
answered within N seconds, on its KPIs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.people.audit import Actor, record_change
from models import Business
from models.agents import (
    DEFAULT_RING_SECONDS,
    DEFAULT_SERVICE_LEVEL_SECONDS,
    DEFAULT_WAIT_LIMIT_SECONDS,
    DEFAULT_WRAP_UP_SECONDS,
    CallSettings,
)

# (field, lowest, highest): the same bounds as the table's checks.
BOUNDS = {
    "ring_seconds": (5, 120),
    "wait_limit_seconds": (0, 3600),
    "wrap_up_seconds": (0, 900),
    "service_level_seconds": (5, 600),
}


@dataclass(frozen=True)
class CallSettingsForm:
    """What the form shows: the values as stored, or as typed when they were refused."""

    ring_seconds: str
    wait_limit_seconds: str
    wrap_up_seconds: str
    service_level_seconds: str

    @classmethod
    def of(cls, row: CallSettings | None) -> CallSettingsForm:
        if row is None:
            return cls(
                str(DEFAULT_RING_SECONDS),
                str(DEFAULT_WAIT_LIMIT_SECONDS),
                str(DEFAULT_WRAP_UP_SECONDS),
                str(DEFAULT_SERVICE_LEVEL_SECONDS),
            )
        return cls(
            str(row.ring_seconds),
            str(row.wait_limit_seconds),
            str(row.wrap_up_seconds),
            str(row.service_level_seconds),
        )


async def call_settings(session: AsyncSession, business_id: uuid.UUID) -> CallSettingsForm:
    row = await session.scalar(select(CallSettings).where(CallSettings.business_id == business_id))
    return CallSettingsForm.of(row)


def parse(typed: CallSettingsForm) -> dict[str, int]:
    """Whole seconds within bounds, or Invalid naming the first field that is not."""
    values: dict[str, int] = {}
    for name, (lowest, highest) in BOUNDS.items():
        raw = getattr(typed, name).strip()
        if not raw.isascii() or not raw.isdigit():
            raise Invalid("Enter a whole number of seconds.", field=name)
        number = int(raw)
        if not lowest <= number <= highest:
            raise Invalid(
                "Enter between %(lowest)s and %(highest)s seconds.",
                field=name,
                lowest=lowest,
                highest=highest,
            )
        values[name] = number
    return values


async def save_call_settings(
    session: AsyncSession, actor: Actor, business: Business, typed: CallSettingsForm
) -> CallSettingsForm:
    """Check and keep the business's call settings; the change is audited."""
    values = parse(typed)
    row = await session.get(CallSettings, business.id)
    if row is None:
        session.add(CallSettings(business_id=business.id, **values))
    else:
        for name, value in values.items():
            setattr(row, name, value)
    await session.flush()
    await record_change(session, actor, "business.call_settings", business, **values)
    return CallSettingsForm(*(str(values[name]) for name in BOUNDS))
