"""Which stage a call's outcome moves its lead to: the business's choice, or the defaults."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.people.audit import Actor, record_change
from models import Business
from models.leads import OUTCOMES, STAGES

# Where an outcome takes the lead unless the business says otherwise: a meeting set is the
# meeting stage, a quote sent the quote stage; the other outcomes leave the stage alone.
DEFAULT_OUTCOME_STAGES = {"booked_meeting": "meeting", "sent_quote": "quote"}
# What an outcome may move a lead to: won needs its deal value, so it stays a choice of hers.
TARGET_STAGES = ("contacted", "meeting", "quote", "lost")


def outcome_stages(business: Business) -> dict[str, str]:
    """{outcome: stage} for every outcome that moves a lead at this business."""
    chosen = business.outcome_stages or DEFAULT_OUTCOME_STAGES
    return {outcome: stage for outcome, stage in chosen.items() if stage in TARGET_STAGES}


def stage_after(business: Business, outcome: str, current: str) -> str | None:
    """The stage a call with this outcome moves a lead at `current` to; None to stay. The
    pipeline only goes forward: a second meeting set on a lead at the quote stage leaves it
    there."""
    stage = outcome_stages(business).get(outcome)
    if stage is None or STAGES.index(stage) <= STAGES.index(current):
        return None
    return stage


def parse_outcome_stages(typed: Mapping[str, str]) -> dict[str, str]:
    """The admin's form, {outcome: stage or ""} for every outcome, checked."""
    chosen: dict[str, str] = {}
    for outcome in OUTCOMES:
        stage = typed.get(outcome, "")
        if stage and stage not in TARGET_STAGES:
            raise Invalid("Unknown stage.", field=outcome)
        chosen[outcome] = stage
    return chosen


async def save_outcome_stages(
    session: AsyncSession, actor: Actor, business: Business, typed: Mapping[str, str]
) -> dict[str, str]:
    """Keep the business's choice of where each outcome moves a lead; the change is audited."""
    chosen = parse_outcome_stages(typed)
    business.outcome_stages = chosen
    await session.flush()
    await record_change(session, actor, "business.outcome_stages", business, **chosen)
    return chosen
