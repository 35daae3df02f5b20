"""The live call log: an interaction saved as she types, checked and closed at wrap-up."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from console.base.db import made_once
from console.base.errors import Conflict, Invalid, NotFound
from console.base.labels import label
from console.contacts.contact_book import touch_contact
from console.leads.call_notices import CallLinks, tell_owners_of_call
from console.leads.leads import lead_to_act_on, move_stage
from console.leads.outcomes import stage_after
from console.leads.scripts import check_answers, published_script, script_version
from console.live import events
from console.people.tenancy import get_scoped
from console.sla import sla
from models import Interaction, Lead, User
from models.leads import INTERACTION_KINDS, OUTCOMES

MAX_NOTES = 200_000
# With nothing typed for this long, a call's talk is over (CALL_IDLE_MINUTES): its page stops
# the timer and asks her to wrap up, and what follows is absence, never talk time.
DEFAULT_IDLE = timedelta(minutes=15)
RESPONSE_KINDS = frozenset(INTERACTION_KINDS) - {"note"}
RESPONSE_CHANNELS = {
    "inbound_call": "phone",
    "outbound_call": "phone",
    "whatsapp": "whatsapp",
    "sms": "sms",
    "email": "email",
}


async def start_interaction(
    session: AsyncSession, user: User, lead_id: str | uuid.UUID, *, kind: str, now: datetime
) -> Interaction:
    """Open the call log on a lead (taking the lead when nobody holds it).

    A call or message, unlike a note, is a response: the first one stamps the lead's first
    response time. A draft she already has open on this lead is returned instead of a second.
    """
    if kind not in INTERACTION_KINDS:
        raise Invalid("Unknown kind of interaction.", field="kind")
    lead = await lead_to_act_on(session, user, lead_id, now=now)
    if lead.closed_at is not None:
        raise Conflict("This lead is closed already.")
    open_draft = await session.scalar(
        select(Interaction).where(
            Interaction.lead_id == lead.id,
            Interaction.user_id == user.id,
            Interaction.status == "draft",
        )
    )
    if open_draft is not None:
        return open_draft
    if lead.claimed_by_id is None:
        lead.claimed_by_id, lead.claimed_at = user.id, now
    script = await published_script(session, lead.business_id)
    interaction = Interaction(
        business_id=lead.business_id,
        lead_id=lead.id,
        contact_id=lead.contact_id,
        user_id=user.id,
        kind=kind,
        started_at=now,
        updated_at=now,
        active_at=now,
        script_id=script.id if script else None,
        script_version=script.version if script else None,
    )
    session.add(interaction)
    await stamp_first_response(session, lead, user, kind, now)
    touch_contact(lead.contact, now)
    await session.flush()
    await events.record(
        session,
        lead.business_id,
        "interaction.started",
        at=now,
        lead_id=lead.id,
        interaction_id=interaction.id,
        user_id=user.id,
    )
    return interaction


async def stamp_first_response(
    session: AsyncSession, lead: Lead, user: User, kind: str, now: datetime
) -> None:
    """The first call or message (not a note) keeps the lead's promise and ends its alerts."""
    if kind in RESPONSE_KINDS and lead.first_response_at is None:
        await sla.stop_clock(session, lead, lead.business, user, RESPONSE_CHANNELS[kind], now)
        await sla.clear_alerts(session, lead, now)
        if lead.stage == "new":
            lead.stage, lead.stage_changed_at = "contacted", now


async def own_draft(
    session: AsyncSession, user: User, interaction_id: str | uuid.UUID
) -> Interaction:
    interaction = await get_scoped(session, user, Interaction, interaction_id)
    if interaction.user_id != user.id:
        raise NotFound("Not found.")
    if interaction.status != "draft":
        raise Conflict("This call was wrapped up already.")
    return interaction


async def autosave(
    session: AsyncSession,
    user: User,
    interaction_id: str | uuid.UUID,
    *,
    notes: str,
    summary: str,
    answers: dict[str, str],
    now: datetime,
    still_here: bool = False,
    idle: timedelta = DEFAULT_IDLE,
) -> Interaction:
    """Keep what she has typed so far, exactly as typed; nothing is checked until wrap-up. A
    change, or her "still on the call", is activity on the call (a save that changes nothing,
    such as the page's last save when she leaves it, is not)."""
    interaction = await own_draft(session, user, interaction_id)
    before = (interaction.notes, interaction.summary, dict(interaction.answers))
    await _keep_typed(session, interaction, notes, summary, answers, final=False, now=now)
    if still_here or before != (interaction.notes, interaction.summary, interaction.answers):
        _active(interaction, now, idle)
    await session.flush()
    return interaction


def talk_ended(active_at: datetime, now: datetime, idle: timedelta) -> datetime | None:
    """When the talk of a call ended, if it has: an idle time after her last activity on it,
    once that has passed."""
    return active_at + idle if now - active_at > idle else None


def _active(interaction: Interaction, now: datetime, idle: timedelta) -> None:
    """She acted on the call at `now`: the talk goes on, unless she had been away longer than
    the idle time, in which case it ended then (her return is not talk)."""
    if interaction.ended_at is not None:
        return
    ended = talk_ended(interaction.active_at or interaction.updated_at, now, idle)
    if ended is not None:
        interaction.ended_at = ended
    else:
        interaction.active_at = now


async def _keep_typed(
    session: AsyncSession,
    interaction: Interaction,
    notes: str,
    summary: str,
    answers: dict[str, str],
    *,
    final: bool,
    now: datetime,
) -> None:
    """What she typed, as typed; at wrap-up (`final`) the answers are checked by kind too."""
    if len(notes) > MAX_NOTES:
        raise Invalid("The notes are too long.", field="notes")
    questions = await _questions(session, interaction)
    merged = {**interaction.answers, **answers} if final else answers
    checked = check_answers(questions, merged, final=final)
    interaction.answers = checked if final else {**interaction.answers, **checked}
    interaction.notes = notes
    interaction.summary = summary.strip()[:500]
    interaction.updated_at = now


async def wrap_up(
    session: AsyncSession,
    user: User,
    interaction_id: str | uuid.UUID,
    *,
    notes: str,
    summary: str,
    answers: dict[str, str],
    outcome: str,
    now: datetime,
    idle: timedelta = DEFAULT_IDLE,
    call_links: CallLinks | None = None,
) -> WrappedUp:
    """End the call: required script questions answered, an outcome chosen, the talk time
    kept (the SIP server's end of a phone call, else her last activity, never her absence),
    and the lead moved on as the business's outcomes say."""
    interaction = await own_draft(session, user, interaction_id)
    if outcome not in OUTCOMES:
        raise Invalid("Pick the outcome of the call.", field="outcome")
    last = interaction.active_at or interaction.updated_at
    await _keep_typed(session, interaction, notes, summary, answers, final=True, now=now)
    interaction.outcome = outcome
    interaction.ended_at = interaction.ended_at or talk_ended(last, now, idle) or now
    interaction.status = "done"
    await session.flush()
    await _logged(session, interaction, now)
    lead = (  # once, for the stage and the owners' message both
        await session.scalars(
            select(Lead)
            .where(Lead.id == interaction.lead_id)
            .options(joinedload(Lead.contact), joinedload(Lead.business))
        )
    ).one()
    moved_to = await _move_by_outcome(session, user, interaction, lead, now)
    await tell_owners_of_call(session, interaction, lead, links=call_links, now=now)
    return WrappedUp(interaction, moved_to)


@dataclass(frozen=True)
class WrappedUp:
    call: Interaction
    moved_to: str | None  # the stage the call's outcome moved its lead to


async def _move_by_outcome(
    session: AsyncSession, user: User, interaction: Interaction, lead: Lead, now: datetime
) -> str | None:
    """A meeting set moves the lead to the meeting stage, a quote sent to quote (as its
    business configures; forward only, an open lead, hers to act on)."""
    business = lead.business
    stage = None
    if lead.closed_at is None and interaction.outcome:
        stage = stage_after(business, interaction.outcome, lead.stage)
    if stage is None:
        return None
    if lead.claimed_by_id not in (None, user.id) and user.role != "admin":
        return None  # another secretary took the lead meanwhile: the stage is hers to move
    reason = label("outcome", interaction.outcome) if stage == "lost" else ""
    await move_stage(session, user, lead.id, stage=stage, lost_reason=reason, now=now)
    return stage


async def add_note(
    session: AsyncSession,
    user: User,
    lead_id: str | uuid.UUID,
    *,
    text: str,
    now: datetime,
    request_key: str = "",
) -> Interaction:
    """A note on the lead, finished at once; it is not a response to the customer. The form's
    one-time key makes a double click write it once."""
    if not text.strip():
        raise Invalid("The note is empty.", field="notes")
    if len(text) > MAX_NOTES:
        raise Invalid("The notes are too long.", field="notes")
    lead = await lead_to_act_on(session, user, lead_id, now=now)
    key = request_key[:64] or None

    async def earlier() -> Interaction | None:
        if key is None:
            return None
        return await session.scalar(
            select(Interaction).where(
                Interaction.business_id == lead.business_id, Interaction.request_key == key
            )
        )

    async def write() -> Interaction:
        return await _new_note(session, user, lead, text, key, now)

    note, _new = await made_once(session, earlier, write)
    return note


async def _new_note(
    session: AsyncSession, user: User, lead: Lead, text: str, key: str | None, now: datetime
) -> Interaction:
    interaction = Interaction(
        business_id=lead.business_id,
        lead_id=lead.id,
        contact_id=lead.contact_id,
        user_id=user.id,
        kind="note",
        status="done",
        started_at=now,
        ended_at=now,
        updated_at=now,
        notes=text,
        request_key=key,
    )
    session.add(interaction)
    await session.flush()
    await _logged(session, interaction, now)
    return interaction


async def _logged(session: AsyncSession, interaction: Interaction, now: datetime) -> None:
    await events.record(
        session,
        interaction.business_id,
        "interaction.logged",
        at=now,
        lead_id=interaction.lead_id,
        interaction_id=interaction.id,
    )


async def _questions(session: AsyncSession, interaction: Interaction) -> list[dict[str, object]]:
    if interaction.script_version is None:
        return []
    script = await script_version(session, interaction.business_id, interaction.script_version)
    return list(script.questions) if script else []
