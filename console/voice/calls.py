"""Calls through the agency's SIP server: what to do with each call, and its record.

The SIP server asks (`POST /sip/route`) for every new call from the trunk and again after every
ring nobody answered or every wait; Mazkira answers from the agent states (`routing.decide`)
and the SIP server carries it out. The first question makes the call a lead through the one
arrival path, with its SLA clock. The SIP server then reports what happened (`POST /sip/events`:
answered by whom, ended and why, cancelled by the caller, failed), and the record is completed
from those alone: a browser that closes mid-call loses nothing.

The answers are `key=value` pairs joined by `;`, which Kamailio reads with `{param.value,key}`:
    action=ring;users=<hex>.<hex>;seconds=20   ring these secretaries' phones this long
    action=wait;seconds=5                      keep the caller ringing, ask again after that
    action=overflow                            nobody: reject (480), the lead is a call-back
    action=overflow;to=voicemail               the business's overflow rule says where (to=
                                               voicemail|on_call|business|callback, with
                                               ;number= or ;line= to dial); until the SIP side
                                               carries these out, handled as above
    action=dial;from=+97231234567              (outgoing) show the business's number
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database, after_commit
from console.base.errors import Conflict, Invalid, NotFound
from console.base.i18n import gettext, using_locale
from console.channels.lines import business_on_line
from console.contacts.contact_book import touch_contact
from console.contacts.contacts import normalise_phone
from console.intake.arrivals import Arrival, Arrived, ById
from console.intake.arrivals import write as write_arrivals
from console.leads.calls import stamp_first_response, start_interaction
from console.leads.leads import get_lead
from console.leads.scripts import fill_greeting, published_script
from console.live import events
from console.live.events import LiveEvent
from console.people.availability import OwnerAway, owners_away
from console.tasks.on_call import people_for_hand_off
from console.voice import overflow, routing, states
from console.voice.credentials import sip_user, user_of_sip
from console.voice.states import AgentState
from models import Business, Contact, Interaction, Lead, Line, Role, User
from models.voice import END_REASONS, Call

Params = Mapping[str, list[str]]

NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
CALL_ID_LENGTH = 200
EVENTS = ("ringing", "answered", "ended", "cancelled", "failed")
OVER = frozenset({"ended", "missed", "abandoned", "failed"})


def _field(params: Params, name: str, *, required: bool = True, max_length: int = 200) -> str:
    value = (params.get(name) or [""])[0].strip()
    if required and not value:
        raise Invalid("The field %(name)s is missing.", field=name, name=name)
    if len(value) > max_length or any(ord(c) < 32 for c in value):
        raise Invalid("The field %(name)s is not valid.", field=name, name=name)
    return value


@dataclass(frozen=True)
class RouteQuestion:
    """The SIP server's question about a call: a new call or a later attempt."""

    direction: str
    call_id: str
    caller: str
    caller_name: str
    dialled: str
    attempt: int
    lead: str = ""

    @classmethod
    def of(cls, params: Params) -> RouteQuestion:
        direction = _field(params, "direction", max_length=3)
        if direction not in ("in", "out"):
            raise Invalid("The field %(name)s is not valid.", field="direction", name="direction")
        attempt = _field(params, "attempt", max_length=4)
        if not attempt.isdigit() or int(attempt) < 1:
            raise Invalid("The field %(name)s is not valid.", field="attempt", name="attempt")
        return cls(
            direction=direction,
            call_id=_field(params, "call_id", max_length=CALL_ID_LENGTH),
            caller=_field(params, "caller", required=False, max_length=64),
            caller_name=_field(params, "caller_name", required=False, max_length=100),
            dialled=_field(params, "dialled", max_length=64),
            attempt=int(attempt),
            lead=_field(params, "lead", required=False, max_length=36),
        )


@dataclass(frozen=True)
class CallEvent:
    """What the SIP server saw happen to a call."""

    event: str
    call_id: str
    user: str  # who answered (her SIP user), for "answered"
    reason: str

    @classmethod
    def of(cls, params: Params) -> CallEvent:
        event = _field(params, "event", max_length=16)
        if event not in EVENTS:
            raise Invalid("The field %(name)s is not valid.", field="event", name="event")
        reason = _field(params, "reason", required=False, max_length=16)
        if reason and reason not in END_REASONS:
            raise Invalid("The field %(name)s is not valid.", field="reason", name="reason")
        return cls(
            event=event,
            call_id=_field(params, "call_id", max_length=CALL_ID_LENGTH),
            user=_field(params, "user", required=False, max_length=64),
            reason=reason,
        )


def answer_of(decision: routing.RouteDecision) -> str:
    if decision.action == "ring" and decision.ring:
        users = ".".join(sip_user(user_id) for user_id in decision.ring)
        return f"action=ring;users={users};seconds={decision.ring_seconds}"
    if decision.action == "wait":
        return f"action=wait;seconds={max(decision.wait_seconds, 1)}"
    if decision.overflow_to:  # the business's overflow rule (console/voice/overflow.py)
        return f"action=overflow;to={decision.overflow_to}"
    return "action=overflow"


async def route_call(db: Database, question: RouteQuestion, *, now: datetime) -> str:
    """The answer to the SIP server's question about a call."""
    if question.direction == "out":
        async with db.transaction() as session:
            return await _route_outgoing(session, question, now=now)
    if question.attempt == 1:
        # A new call is asked about once (Kamailio's transaction absorbs the trunk's
        # retransmissions): one writing transaction, nothing read first.
        try:
            return await _first_question(db, question, now=now)
        except IntegrityError:  # a twin question wrote this call first: answered from its row
            pass
    async with db.transaction(write=False) as session:
        business = await business_on_line(session, "phone", question.dialled)
        known = await _call(session, question.call_id)
        if known is not None:
            answer = await _read_answer(session, known, question.attempt, now=now)
            if answer is not None:
                return answer
    async with db.transaction() as session:
        call = await _call(session, question.call_id, for_update=True)
        if call is not None:
            return await _decide(session, business, call, question.attempt, now=now)
    return await _first_question(db, question, now=now)  # a call whose first question we missed


async def _first_question(db: Database, question: RouteQuestion, *, now: datetime) -> str:
    """A new call in one writing transaction: its business by the number dialled, its lead
    through the one arrival path (with its SLA clock; never a call without one), whom it
    rings, and its row, written once with that decision."""
    number = _number_of(question.caller)
    async with db.transaction() as session:
        business = await business_on_line(session, "phone", question.dialled)
        with using_locale(business.locale):
            arrival = Arrival(
                ById(business.id),
                "phone",
                now,
                phone=number or "",
                name=question.caller_name,
                subject=call_subject(question.caller, missed=False),
                source=gettext("Phone call"),
                message_id=question.call_id,
                no_number=number is None,
            )
        (arrived,) = await write_arrivals(session, [arrival])
        if not isinstance(arrived, Arrived):
            raise arrived  # the business was deactivated meanwhile
        call = Call(
            business_id=business.id,
            lead_id=arrived.lead_id,
            interaction_id=arrived.interaction_id,
            sip_call_id=question.call_id,
            direction="in",
            caller=question.caller,
            dialled=question.dialled,
            state="waiting",
            arrived_at=now,
            attempt=0,
            answer="",
            ringing=[],
            rung=[],
        )
        answer = await _decide(session, business, call, question.attempt, now=now)
        session.add(call)  # its INSERT at the commit; a twin's row makes it an IntegrityError
        return answer


# What carriers send when the caller withholds the number (RFC 3323 "anonymous", and others').
WITHHELD = frozenset({"", "anonymous", "unknown", "restricted", "private", "unavailable"})


def _number_of(caller: str) -> str | None:
    """The caller's number in E.164; None when withheld or not a phone number."""
    if caller.strip().lower() in WITHHELD:
        return None
    try:
        return normalise_phone(caller)
    except Invalid:
        return None


def call_subject(caller: str, *, missed: bool) -> str:
    """A call's lead's subject, in the current language: a missed call asks for a call-back, and
    a number withheld or unreadable says so (with the number as received), so nobody calls
    back blindly."""
    if _number_of(caller) is not None:
        return gettext("Missed call: call back") if missed else gettext("Incoming call")
    if caller.strip().lower() in WITHHELD:
        if missed:
            return gettext("Missed call: number withheld")
        return gettext("Incoming call: number withheld")
    if missed:
        return gettext("Missed call from %(number)s: check the number") % {"number": caller}
    return gettext("Incoming call from %(number)s: check the number") % {"number": caller}


async def _read_answer(
    session: AsyncSession, call: Call, attempt: int, *, now: datetime
) -> str | None:
    """The answer when it changes nothing, from a read transaction: a repeated question, a call
    already over, or a waiting call's "anyone free now?" while still nobody is (most questions
    when many wait). None when the answer writes: someone to ring (asked again, locking her, in
    the writing transaction), a ring to end, an overflow."""
    if call.state not in ("waiting", "ringing"):
        return "action=overflow"
    if attempt <= call.attempt:
        return call.answer
    if call.state != "waiting" or call.ringing:
        return None
    decision = await routing.decide(
        session,
        business_id=call.business_id,
        attempt=attempt,
        rung=[uuid.UUID(hex=user) for user in call.rung],
        waited_seconds=(now - call.arrived_at).total_seconds(),
        now=now,
        take=False,
    )
    return answer_of(decision) if decision.action == "wait" else None


async def _call(session: AsyncSession, call_id: str, *, for_update: bool = False) -> Call | None:
    query = select(Call).where(Call.sip_call_id == call_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def _decide(
    session: AsyncSession, business: Business, call: Call, attempt: int, *, now: datetime
) -> str:
    if call.state not in ("waiting", "ringing"):
        return "action=overflow"
    if attempt <= call.attempt:  # the same question again: the same answer
        return call.answer
    await _ring_over(session, call, now=now)
    decision = await routing.decide(
        session,
        business_id=business.id,
        attempt=attempt,
        rung=[uuid.UUID(hex=user) for user in call.rung],
        waited_seconds=(now - call.arrived_at).total_seconds(),
        now=now,
    )
    answer = answer_of(decision)
    if decision.overflow_to:  # where: the on-call person's number, the other business's line
        answer += await overflow.destination(
            session, business, decision.overflow_to, decision.overflow_business, now=now
        )
    if answer.startswith("action=ring"):
        for user_id in decision.ring:
            await states.set_state(
                session, user_id, AgentState.RINGING, now=now, business_id=business.id
            )
        ringing = [sip_user(user_id) for user_id in decision.ring]
        call.ringing = ringing
        call.rung = [*call.rung, *(user for user in ringing if user not in call.rung)]
        call.state = "ringing"
        call.ringing_at = call.ringing_at or now
        # Her banner goes to her consoles as soon as this commits, ahead of her phone's INVITE.
        payload = {
            "call_id": call.sip_call_id,
            "to": [str(user_id) for user_id in decision.ring],
            "seconds": decision.ring_seconds,
        }
        after_commit(session, LiveEvent(0, str(business.id), 0, "call.ringing", payload))
    elif answer.startswith("action=wait"):
        call.state = "waiting"
    else:
        await _close_unanswered(session, business, call, "missed", "overflow", now=now)
    call.attempt, call.answer = attempt, answer
    return answer


async def _ring_over(
    session: AsyncSession, call: Call, *, keep: uuid.UUID | None = None, now: datetime
) -> None:
    """The secretaries this call was ringing are free again (unless one answered it)."""
    ringing = [uuid.UUID(hex=user) for user in call.ringing]
    standings = await states.standings(session, ringing, now=now)
    for user_id in ringing:
        if user_id != keep and standings[user_id].state is AgentState.RINGING:
            await states.set_state(session, user_id, AgentState.AVAILABLE, now=now)
    call.ringing = []


async def _close_unanswered(
    session: AsyncSession, business: Business, call: Call, state: str, reason: str, *, now: datetime
) -> None:
    """Nobody took the call: it ends, and its lead becomes a call-back, once."""
    call.state, call.ended_at, call.end_reason = state, now, reason
    if call.interaction_id is None:
        return
    interaction = await session.get_one(Interaction, call.interaction_id)
    if interaction.outcome == "no_answer":
        return
    with using_locale(business.locale):
        interaction.outcome = "no_answer"
        interaction.summary = gettext("Missed call")
        interaction.updated_at = now
        lead = await session.get_one(Lead, interaction.lead_id)
        # A lead this call opened says so; a caller's open lead it joined keeps its subject
        # (the missed call is in its history, and its priority rises all the same).
        if lead.created_at == interaction.started_at:
            lead.subject = call_subject(call.caller, missed=True)
    if lead.priority in ("low", "normal"):
        lead.priority = "high"
    await events.record(session, business.id, "lead.updated", at=now, lead_id=lead.id)


async def _route_outgoing(session: AsyncSession, question: RouteQuestion, *, now: datetime) -> str:
    """A secretary's call out from a lead: shown to the callee as the lead's business's number."""
    user_id = user_of_sip(question.caller)
    user = await session.get(User, user_id) if user_id else None
    if user is None or not user.active or user.role != Role.SECRETARY:
        raise NotFound("No secretary has this SIP user.")
    if not NUMBER.match(question.dialled):
        raise Invalid("The field %(name)s is not valid.", field="dialled", name="dialled")
    lead = await get_lead(session, user, question.lead)
    line = await session.scalar(
        select(Line.address)
        .where(Line.business_id == lead.business_id, Line.channel == "phone")
        .order_by(Line.address)
        .limit(1)
    )
    if line is None:
        raise NotFound("This business has no phone number.")
    answer = f"action=dial;from={line}"
    if await _call(session, question.call_id) is None:
        # Logged the same way as a call she answers: her call log on the lead, running.
        log = await start_interaction(session, user, lead.id, kind="outbound_call", now=now)
        # A call log of hers still open on the lead is another call's: this one keeps only its row.
        mine = log.kind == "outbound_call" and log.started_at == now
        session.add(
            Call(
                business_id=lead.business_id,
                lead_id=lead.id,
                interaction_id=log.id if mine else None,
                sip_call_id=question.call_id,
                direction="out",
                caller=line,
                dialled=question.dialled,
                state="ringing",
                answered_by_id=user.id,
                arrived_at=now,
                ringing_at=now,
                attempt=question.attempt,
                answer=answer,
                ringing=[],
                rung=[],
            )
        )
    return answer


async def record_event(session: AsyncSession, event: CallEvent, *, now: datetime) -> bool:
    """Apply what the SIP server saw; False when it changed nothing (a repeat, or too late)."""
    call = await _call(session, event.call_id, for_update=True)
    if call is None:
        raise NotFound("No call has this id.")
    if event.event == "ringing" or call.state in OVER:
        return False
    business = await session.get_one(Business, call.business_id)
    if event.event == "answered":
        return await _answered(session, business, call, event, now=now)
    if event.event == "ended" and call.state == "answered":
        await _ended(session, call, event.reason or "caller_hangup", now=now)
        return True
    if call.direction == "out":
        call.state, call.ended_at, call.end_reason = "failed", now, event.reason or "failed"
        return True
    await _ring_over(session, call, now=now)
    reason = "cancelled" if event.event == "cancelled" else event.reason or "failed"
    await _close_unanswered(session, business, call, "abandoned", reason, now=now)
    return True


async def _answered(
    session: AsyncSession, business: Business, call: Call, event: CallEvent, *, now: datetime
) -> bool:
    if call.state == "answered":
        return False
    if call.direction == "out":
        call.state, call.answered_at = "answered", now
        return True
    user_id = user_of_sip(event.user)
    if user_id is None or event.user not in call.rung:
        raise Conflict("The secretary who answered was not rung for this call.")
    await _ring_over(session, call, keep=user_id, now=now)
    call.state, call.answered_by_id, call.answered_at = "answered", user_id, now
    await states.set_state(session, user_id, AgentState.ON_CALL, now=now, business_id=business.id)
    if call.interaction_id is not None:
        await _log_for(session, call, user_id, now=now)
    return True


async def _log_for(session: AsyncSession, call: Call, user_id: uuid.UUID, *, now: datetime) -> None:
    """The call's interaction becomes her running call log (the lead page shows it open), as
    if she had started it: she takes the lead and the first response is stamped now."""
    user = await session.get_one(User, user_id)
    interaction = await session.get_one(Interaction, call.interaction_id)
    lead = await get_lead(session, user, interaction.lead_id)
    script = await published_script(session, lead.business_id)
    interaction.user_id, interaction.status = user.id, "draft"
    interaction.started_at = interaction.updated_at = now
    interaction.script_id = script.id if script else None
    interaction.script_version = script.version if script else None
    if lead.claimed_by_id is None:
        lead.claimed_by_id, lead.claimed_at = user.id, now
    await stamp_first_response(session, lead, user, "inbound_call", now)
    touch_contact(lead.contact, now)
    await events.record(
        session,
        lead.business_id,
        "interaction.started",
        at=now,
        lead_id=lead.id,
        interaction_id=interaction.id,
        user_id=user.id,
    )


async def _ended(session: AsyncSession, call: Call, reason: str, *, now: datetime) -> None:
    """The talk ends: its real length goes on the call and its log; she wraps up."""
    call.state, call.ended_at, call.end_reason = "ended", now, reason
    if call.interaction_id is not None:
        interaction = await session.get_one(Interaction, call.interaction_id)
        interaction.ended_at = now
    talked = (now - call.answered_at).total_seconds() if call.answered_at else 0
    await events.record(  # for outbound webhooks; the consoles draw nothing for it
        session,
        call.business_id,
        "call.ended",
        at=now,
        call_id=call.id,
        lead_id=call.lead_id,
        direction=call.direction,
        reason=reason,
        answered_by_id=call.answered_by_id,
        seconds=round(talked),
    )
    if call.answered_by_id is not None and call.direction == "in":
        await states.set_state(
            session, call.answered_by_id, AgentState.WRAP_UP, now=now, business_id=call.business_id
        )


@dataclass(frozen=True)
class Banner:
    """What her console shows while the call rings: whose line, what to say, who calls."""

    call_id: str
    business: str
    greeting: str
    caller: str
    contact_name: str
    lead_id: uuid.UUID | None
    lead_subject: str
    open_leads: int
    # The business's owners who are away now, with their notes: whether to put the call
    # through to him or to whoever is on call (console/people/availability.py).
    owners_away: tuple[OwnerAway, ...] = ()


async def ringing_banner(
    session: AsyncSession, user: User, sip_call_id: str, *, now: datetime
) -> Banner:
    """The banner of a call ringing her phone (or answered by her); 404 for any other."""
    call = await _call(session, sip_call_id)
    mine = call is not None and (
        sip_user(user.id) in call.ringing or call.answered_by_id == user.id
    )
    if call is None or not mine:
        raise NotFound("Not found.")
    business = await session.get_one(Business, call.business_id)
    lead = await session.get(Lead, call.lead_id) if call.lead_id else None
    contact = await session.get(Contact, lead.contact_id) if lead else None
    open_leads = 0
    if contact is not None:
        found = await session.scalars(
            select(Lead.id).where(Lead.contact_id == contact.id, Lead.closed_at.is_(None))
        )
        open_leads = len(found.all())
    script = await published_script(session, business.id)
    people = await people_for_hand_off(session, business.id)
    owners = [person for person in people if person.role == Role.OWNER]
    name = contact.name if contact else ""
    greeting = fill_greeting(
        script.greeting if script else "", business=business.name, secretary=user.name, contact=name
    )
    return Banner(
        call_id=call.sip_call_id,
        business=business.name,
        greeting=greeting,
        caller="" if call.caller.strip().lower() in WITHHELD else call.caller,  # "withheld"
        contact_name=name,
        lead_id=lead.id if lead else None,
        lead_subject=lead.subject if lead else "",
        open_leads=open_leads,
        owners_away=tuple(owners_away(owners, business.timezone, now)),
    )
