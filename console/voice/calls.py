"""Calls through the agency's SIP server: what to do with each call, and its record.

The SIP server asks (`POST /sip/route`) for every new call from the trunk and again after every
ring nobody answered or every wait; Mazkira answers from the agent states (`routing.decide`)
and the SIP server carries it out. The first question makes the call a lead through the one
arrival path, with its SLA clock. The SIP server then reports what happened (`POST /sip/events`:
answered by whom, declined by whom (her reject button's 603), ended and why, cancelled by the
caller, failed), and the record is completed from those alone: a browser that closes mid-call
loses nothing. A secretary who declined a call is not rung for it again; routing goes on to the
next one, the queue or the overflow as usual.

The answers are `key=value` pairs joined by `;`, which Kamailio reads with `{param.value,key}`:
    action=ring;users=<hex>.<hex>;seconds=20   ring these secretaries' phones this long
    action=wait;seconds=5                      keep the caller ringing, ask again after that
    action=overflow                            nobody: reject (480), the lead is a call-back
    action=ring;users=<hex>;seconds=20;record=1  the business records its calls (rtpengine)
    …;record=1;announce=1                      and has an announcement: Kamailio blocks the
                                               call's media as she answers, until Mazkira has
                                               played it (voicemail.announce)
    action=overflow;to=voicemail;max=120       the business's overflow rule says where (to=
                                               voicemail|on_call|business|callback, with
                                               ;number= or ;line= to dial); voicemail is then
                                               asked for (`POST /sip/voicemail`,
                                               console/voice/voicemail.py; max: the longest
                                               message, in seconds); the others are
                                               handled as above until the SIP side does them
    action=dial;from=+97231234567              (outgoing) show the business's number
    action=refer / action=out;number=… / action=line;number=… / action=dial;…;to=…
                                               a transfer's REFER, its leg, her call to him
                                               first (console/voice/transfers.py)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, case, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import Database, after_commit
from console.base.errors import Conflict, Invalid, NotFound
from console.base.i18n import gettext, using_locale
from console.channels.lines import business_on_line
from console.contacts.contact_book import touch_contact
from console.intake.arrivals import Arrival, Arrived, ById
from console.intake.arrivals import write as write_arrivals
from console.intake.callers import WITHHELD, call_subject, caller_number
from console.leads.calls import stamp_first_response, start_interaction
from console.leads.leads import get_lead
from console.leads.scripts import fill_greeting, published_script
from console.live import events
from console.live.events import LiveEvent
from console.people.availability import OwnerAway, owners_away
from console.tasks.on_call import people_for_hand_off
from console.voice import overflow, routing, states, transfers
from console.voice.credentials import sip_user, user_of_sip
from console.voice.states import AgentState
from models import Business, Contact, Interaction, Lead, Line, Role, User
from models.recordings import DEFAULT_VOICEMAIL_SECONDS
from models.voice import END_REASONS, Call, CallTransfer

Params = Mapping[str, list[str]]

NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
CALL_ID_LENGTH = 200
EVENTS = ("ringing", "answered", "rejected", "ended", "cancelled", "failed")
OVER = frozenset({"ended", "missed", "abandoned", "failed"})


def _field(params: Params, name: str, *, required: bool = True, max_length: int = 200) -> str:
    value = (params.get(name) or [""])[0].strip()
    if required and not value:
        raise Invalid("The field %(name)s is missing.", field=name, name=name)
    if len(value) > max_length or any(ord(c) < 32 for c in value):
        raise Invalid("The field %(name)s is not valid.", field=name, name=name)
    return value


def call_id_of(params: Params) -> str:
    return _field(params, "call_id", max_length=CALL_ID_LENGTH)


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
        direction = _field(params, "direction", max_length=8)
        if direction not in ("in", "out", "transfer"):
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
    user: str  # who answered or declined (her SIP user), for "answered" and "rejected"
    reason: str
    from_tag: str = ""  # the caller's From tag, for "answered" (an announcement is played)

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
            from_tag=_field(params, "from_tag", required=False, max_length=128),
        )


def answer_of(decision: routing.RouteDecision) -> str:
    if decision.action == "ring" and decision.ring:
        users = ".".join(sip_user(user_id) for user_id in decision.ring)
        record = ";record=1" if decision.record else ""
        if decision.announce:  # Kamailio blocks the media when she answers (voicemail.announce)
            record += ";announce=1"
        return f"action=ring;users={users};seconds={decision.ring_seconds}{record}"
    if decision.action == "wait":
        return f"action=wait;seconds={max(decision.wait_seconds, 1)}"
    if decision.overflow_to == "voicemail":  # the SIP server ends a message this long
        seconds = decision.voicemail_seconds or DEFAULT_VOICEMAIL_SECONDS
        return f"action=overflow;to=voicemail;max={seconds}"
    if decision.overflow_to:  # the business's overflow rule (console/voice/overflow.py)
        return f"action=overflow;to={decision.overflow_to}"
    return "action=overflow"


async def route_call(db: Database, question: RouteQuestion, *, now: datetime) -> str:
    """The answer to the SIP server's question about a call."""
    if question.dialled.startswith(transfers.TOKEN_PREFIX) or question.direction == "transfer":
        async with db.transaction() as session:
            return await transfers.route_question(
                session,
                question.direction,
                question.call_id,
                question.caller,
                question.dialled,
                now=now,
                her=user_of_sip(question.caller),
                attempt=question.attempt,
            )
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
        known = await _call(session, question.call_id)
        if known is not None:
            answer = await _read_answer(session, known, question.attempt, now=now)
            if answer is not None:
                return answer
    async with db.transaction() as session:
        business = await business_on_line(session, "phone", question.dialled)
        call = await _call(session, question.call_id, for_update=True)
        if call is not None:
            return await _decide(session, business, call, question.attempt, now=now)
    return await _first_question(db, question, now=now)  # a call whose first question we missed


async def _first_question(db: Database, question: RouteQuestion, *, now: datetime) -> str:
    """A new call in one writing transaction: its business by the number dialled, its lead
    through the one arrival path (with its SLA clock; never a call without one), whom it
    rings, and its row, written once with that decision."""
    number = caller_number(question.caller)
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
            declined=[],
        )
        answer = await _decide(session, business, call, question.attempt, now=now)
        session.add(call)  # its INSERT at the commit; a twin's row makes it an IntegrityError
        return answer


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
        declined=[uuid.UUID(hex=user) for user in call.declined or ()],
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
        declined=[uuid.UUID(hex=user) for user in call.declined or ()],
        waited_seconds=(now - call.arrived_at).total_seconds(),
        now=now,
    )
    answer = answer_of(decision)
    if decision.overflow_to:  # where: the on-call person's number, the other business's line
        answer += await overflow.destination(
            session, business, decision.overflow_to, decision.overflow_business, now=now
        )
    call.attempt, call.answer = attempt, answer
    if answer.startswith("action=ring"):  # `decide` has set her ringing
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
    """Nobody took the call: it ends, and its lead becomes a call-back, once. Two UPDATEs,
    nothing read back (a new call's overflow comes right after the arrival path wrote both)."""
    call.state, call.ended_at, call.end_reason = state, now, reason
    if call.interaction_id is None or call.lead_id is None:
        return
    with using_locale(business.locale):
        summary = gettext("Missed call")
        subject = call_subject(call.caller, missed=True)
    # The call's own row is written once, at the commit (not flushed ahead of these).
    with session.no_autoflush:
        marked = await session.execute(
            update(Interaction)
            .where(
                Interaction.id == call.interaction_id,
                or_(Interaction.outcome.is_(None), Interaction.outcome != "no_answer"),
            )
            .values(outcome="no_answer", summary=summary, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not cast(CursorResult[Any], marked).rowcount:
            return  # marked already
        # A lead this call opened says so; a caller's open lead it joined keeps its subject (the
        # missed call is in its history, and its priority rises all the same).
        opened = Lead.created_at == (
            select(Interaction.started_at)
            .where(Interaction.id == call.interaction_id)
            .scalar_subquery()
        )
        await session.execute(
            update(Lead)
            .where(Lead.id == call.lead_id)
            .values(
                subject=case((opened, subject), else_=Lead.subject),
                priority=case((Lead.priority.in_(("low", "normal")), "high"), else_=Lead.priority),
            )
            .execution_options(synchronize_session=False)
        )
        await events.record(session, business.id, "lead.updated", at=now, lead_id=call.lead_id)


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
                declined=[],
            )
        )
    return answer


async def record_event(session: AsyncSession, event: CallEvent, *, now: datetime) -> bool:
    """Apply what the SIP server saw; False when it changed nothing (a repeat, or too late)."""
    leg = await transfers.record_event(session, event.call_id, event.event, now=now)
    call = await _call(session, event.call_id, for_update=True)
    if call is None:
        if leg is not None:
            if leg.target == "secretary":
                await _secretary_leg(session, leg, event, now=now)
            return True
        raise NotFound("No call has this id.")
    if event.event == "ringing" or call.state in OVER:
        return False
    business = await session.get_one(Business, call.business_id)
    if event.event == "answered":
        return await _answered(session, business, call, event, now=now)
    if event.event == "rejected":
        return await _rejected(session, call, event, now=now)
    if event.event == "ended" and call.state == "answered":
        handing = await transfers.to_secretary_under_way(session, call)
        if handing is not None:  # the caller goes on with another secretary: her part ends
            return await _first_part_over(session, call, handing, now=now)
        reason = event.reason or "caller_hangup"
        if await transfers.transferred(session, call):
            reason = "transferred"
        await _ended(session, call, reason, now=now)
        return True
    if call.direction == "out":
        call.state, call.ended_at, call.end_reason = "failed", now, event.reason or "failed"
        return True
    await _ring_over(session, call, now=now)
    reason = "cancelled" if event.event == "cancelled" else event.reason or "failed"
    await _close_unanswered(session, business, call, "abandoned", reason, now=now)
    return True


async def _secretary_leg(
    session: AsyncSession, transfer: CallTransfer, event: CallEvent, *, now: datetime
) -> None:
    """The caller's leg to another secretary (console/voice/transfers.py): she answered it, so
    the call is hers from now on (its row says she answered it, the lead is hers, her call log
    starts on it); or the leg ended, and with it the caller's call; or her ring was not taken."""
    call = await session.get_one(Call, transfer.call_id, with_for_update=True)
    assert transfer.person_id is not None
    her = transfer.person_id
    if transfer.consult_call_id == event.call_id:  # the first's call to her first (warm)
        if event.event != "answered":
            await transfers.ring_over(session, transfer, now=now, talked=True)
        elif event.user != sip_user(her):
            raise Conflict("The secretary who answered was not rung for this call.")
        else:
            await states.set_state(
                session, her, AgentState.ON_CALL, now=now, business_id=call.business_id
            )
        return
    if event.event == "answered":
        if event.user != sip_user(her):
            raise Conflict("The secretary who answered was not rung for this call.")
        await _handed_to(session, call, her, now=now)
    elif transfer.answered_at is not None:
        if call.state == "answered":
            await _ended(session, call, event.reason or "caller_hangup", now=now)
    else:
        await transfers.ring_over(session, transfer, now=now)
        await transfers.caller_left(session, transfer, call, now=now)


async def _handed_to(session: AsyncSession, call: Call, her: uuid.UUID, *, now: datetime) -> None:
    """She answered the caller put through to her: the first secretary's log of the call ends
    (her talk with the caller is over), the call is hers, and so are the lead and a call log."""
    await states.set_state(session, her, AgentState.ON_CALL, now=now, business_id=call.business_id)
    if call.interaction_id is not None:
        first_log = await session.get_one(Interaction, call.interaction_id)
        first_log.ended_at = first_log.ended_at or now
    call.answered_by_id = her
    lead = await session.get(Lead, call.lead_id) if call.lead_id else None
    if lead is None or lead.closed_at is not None:
        return
    if lead.claimed_by_id != her:
        lead.claimed_by_id, lead.claimed_at = her, now
        await events.record(
            session, lead.business_id, "lead.claimed", at=now, lead_id=lead.id, user_id=her
        )
    user = await session.get_one(User, her)
    log = await start_interaction(session, user, lead.id, kind="inbound_call", now=now)
    call.interaction_id = log.id


async def _first_part_over(
    session: AsyncSession, call: Call, transfer: CallTransfer, *, now: datetime
) -> bool:
    """The first secretary's leg of a call put through to another secretary ended: she wraps
    up, and the call goes on (or ends with the leg to the other, if that fails)."""
    first = transfer.by_id
    if first is None:
        return False
    standing = await states.standings(session, [first], now=now)
    if standing[first].state is not AgentState.ON_CALL:
        return False  # a repeat (the dialog's own end after her BYE)
    if call.interaction_id is not None and call.answered_by_id == first:
        first_log = await session.get_one(Interaction, call.interaction_id)
        first_log.ended_at = first_log.ended_at or now
    await states.set_state(
        session, first, AgentState.WRAP_UP, now=now, business_id=call.business_id
    )
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


async def _rejected(session: AsyncSession, call: Call, event: CallEvent, *, now: datetime) -> bool:
    """She declined the ring (her reject button): the record says so, she is free again and is
    not rung for this call again; the SIP server then asks what next (`attempt+1`)."""
    if call.state != "ringing" or call.direction != "in":
        return False
    user_id = user_of_sip(event.user)
    if user_id is None or event.user not in call.rung:
        raise Conflict("The secretary who declined was not rung for this call.")
    if event.user in (call.declined or ()):
        return False
    call.declined = [*(call.declined or ()), event.user]
    call.rejected_at = call.rejected_at or now
    if event.user in call.ringing:
        call.ringing = [user for user in call.ringing if user != event.user]
        standing = (await states.standings(session, [user_id], now=now))[user_id]
        if standing.state is AgentState.RINGING:
            await states.set_state(session, user_id, AgentState.AVAILABLE, now=now)
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
    transferred_by: str = ""  # the secretary who put the call through to her, if one did
    consulted_by: str = ""  # the secretary who calls her first about the call (warm)


async def ringing_banner(
    session: AsyncSession, user: User, sip_call_id: str, *, now: datetime
) -> Banner:
    """The banner of a call ringing her phone (or answered by her); 404 for any other. A call
    another secretary put through to her rings by its leg's Call-ID: the banner says who did."""
    call = await _call(session, sip_call_id)
    mine = call is not None and (
        sip_user(user.id) in call.ringing or call.answered_by_id == user.id
    )
    transferred_by, consulted_by = "", ""
    if call is None:
        handed = await session.scalar(
            select(CallTransfer).where(
                or_(
                    CallTransfer.leg_call_id == sip_call_id,
                    CallTransfer.consult_call_id == sip_call_id,
                ),
                CallTransfer.target == "secretary",
                CallTransfer.person_id == user.id,
            )
        )
        if handed is not None and handed.ended_at is None:
            call = await session.get_one(Call, handed.call_id)
            first = await session.get(User, handed.by_id) if handed.by_id else None
            mine = True
            if handed.leg_call_id == sip_call_id:
                transferred_by = first.name if first else ""
            else:
                consulted_by = first.name if first else ""
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
        call_id=sip_call_id,
        business=business.name,
        greeting=greeting,
        caller="" if call.caller.strip().lower() in WITHHELD else call.caller,  # "withheld"
        contact_name=name,
        lead_id=lead.id if lead else None,
        lead_subject=lead.subject if lead else "",
        open_leads=open_leads,
        owners_away=tuple(owners_away(owners, business.timezone, now)),
        transferred_by=transferred_by,
        consulted_by=consulted_by,
    )


@dataclass(frozen=True)
class CallLine:
    """One of a lead's calls as its page lists it: when, how it went, who answered or declined."""

    arrived_at: datetime
    direction: str
    outcome: str  # answered, rejected, abandoned, missed, voicemail, transferred, under_way
    answered_by: str
    declined_by: tuple[str, ...]
    talk_seconds: int | None


def outcome_of(call: Call) -> str:
    """How a call went, as the KPIs count it (console/reports/kpis.py)."""
    if call.answered_at is not None:
        return "transferred" if call.end_reason == "transferred" else "answered"
    if call.ended_at is None:
        return "under_way"
    if call.rejected_at is not None:
        return "rejected"
    if call.end_reason == "voicemail":
        return "voicemail"
    if call.state == "abandoned" and call.end_reason == "cancelled":
        return "abandoned"
    return "missed"


async def calls_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[CallLine]:
    """The lead's calls through the SIP server, oldest first: one statement, and one more for
    the names of those who declined one, only when someone did."""
    found = (
        await session.execute(
            select(Call, User.name)
            .outerjoin(User, User.id == Call.answered_by_id)
            .where(Call.lead_id == lead_id)
            .order_by(Call.arrived_at)
        )
    ).all()
    declined = {user for call, _ in found for user in call.declined or ()}
    names: dict[str, str] = {}
    if declined:
        ids = [user_id for user in declined if (user_id := user_of_sip(user)) is not None]
        rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
        names = {sip_user(user_id): name for user_id, name in rows}
    return [
        CallLine(
            arrived_at=call.arrived_at,
            direction=call.direction,
            outcome=outcome_of(call),
            answered_by=name or "",
            declined_by=tuple(names.get(user, "") for user in call.declined or ()),
            talk_seconds=(
                round((call.ended_at - call.answered_at).total_seconds())
                if call.answered_at and call.ended_at
                else None
            ),
        )
        for call, name in found
    ]
