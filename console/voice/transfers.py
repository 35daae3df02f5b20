"""Putting a call through: to the owner's phone, the person on call, someone of the chain, or
another business's line; blind (the caller goes straight to him) or warm (the caller on hold,
she speaks to him first, then connects them and leaves, or goes back to the caller).

Only numbers on the business's list may be dialled this way (`targets`): its owners' phones, the
people of its on-call rota, and the agency's other lines; or another secretary who serves the
business and is available now (`secretaries`), whose console phone rings with the same lead.
The owner's availability decides what is offered: an owner in a meeting, on vacation or not to
be disturbed is shown with his status and note but not offered (refused, 409), and whoever is
on call now is offered instead. The list is checked twice: when she asks (`request`, from the
console, refusing with a message beside the number) and when the SIP server asks whether the
REFER or her call to him may go (`route_question`), so a page that skips the first check dials
nothing.

How the SIP server carries it out (deploy/sip/kamailio.cfg): the transfer gets a token, and the
caller is referred to `xfer-<token>` at the SIP server; the caller's new INVITE asks Mazkira
where that goes (`action=out;number=…` through the trunk, or `action=line;number=…` for another
business's line, which is then a new call to that business). A warm transfer's first call is
her own call out to `xfer-<token>` (`action=dial;from=<the business's line>;to=<number>`). The
legs' events (answered, ended, failed) complete the transfer's row: when he answered the
caller and how long they spoke, kept on the lead.

To another secretary (blind), the caller's leg is answered `action=ring;users=<her>` and rings
her browser like any call, her banner saying who put the call through and with the same lead;
when she answers, the call's row says she answered it (the caller's talk time runs on from the
first answer to the end of the whole call, console/voice/calls.py), the lead is hers and her own
call log starts on it; the first secretary wraps up when her part ends. A business that records
its calls has that leg recorded too (`;record=1`, so Kamailio offers it to rtpengine with
`record-call=on`): each leg's recording is collected when that leg ends, both on the same lead
(console/voice/voicemail.py); so has a leg put through to a number (`action=out;…;record=1`:
Kamailio puts rtpengine into that trunk-to-trunk leg, plain RTP on both sides). Nobody answers:
her ring is over, the caller's leg fails, and the first secretary has the caller back. Warm, her own
call first to `xfer-<token>` is answered `action=ring;users=<her>` too (browser to browser
through the SIP server and rtpengine); that one is on a call while they talk and available
again after, for the caller's leg to ring her.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.db import after_commit
from console.base.errors import Conflict, Invalid, NotFound
from console.base.labels import agent_states
from console.contacts.contacts import normalise_phone
from console.live.events import LiveEvent
from console.people.availability import away_now, describe
from console.sla.sla import clock_for
from console.tasks.on_call import order_at, people_for_hand_off, rota_of
from console.voice import states
from console.voice.credentials import sip_user
from console.voice.states import AgentState
from models import Business, Line, Role, SecretaryAssignment, User
from models.agents import DEFAULT_RING_SECONDS, CallSettings
from models.recordings import RecordingSettings
from models.voice import Call, CallTransfer

TOKEN_PREFIX = "xfer-"  # noqa: S105 (a SIP address prefix, no secret)
KINDS = ("blind", "warm")


@dataclass(frozen=True)
class Target:
    """A number a call of this business may be put through to."""

    # owner, on_call, person (of the chain), business (another business's line), secretary
    target: str
    number: str  # E.164 ("" for a secretary: her console phone)
    name: str
    person_id: uuid.UUID | None = None
    away: str = ""  # his status (her state) now, as the secretary reads it ("" when available)
    note: str = ""

    @property
    def offered(self) -> bool:
        return not self.away


def _phone(user: User) -> str | None:
    try:
        return normalise_phone(user.phone or "")
    except Invalid:
        return None


async def targets(session: AsyncSession, business: Business, *, now: datetime) -> list[Target]:
    """The business's transfer list in the order offered: its owners, whoever is on call now
    (the first of the rota's order who is available), the rest of the chain, then the agency's
    other lines. Someone away is listed with his status, not offered."""
    found: list[Target] = []
    seen: set[str] = set()

    def add(target: Target) -> None:
        if target.number not in seen:
            seen.add(target.number)
            found.append(target)

    def person(kind: str, user: User) -> Target | None:
        number = _phone(user)
        if number is None:
            return None
        away = away_now(user, now)
        text = describe(away, business.timezone, now) if away else ""
        return Target(kind, number, user.name, user.id, text, away.note if away else "")

    people = {p.id: p for p in await people_for_hand_off(session, business.id)}
    owners = [p for p in people.values() if p.role == Role.OWNER]
    rota = await rota_of(session, business.id)
    chain: list[User] = []
    if rota is not None:
        for user_hex, _reach in order_at(rota, clock_for(business), now):
            user = people.get(uuid.UUID(hex=user_hex))
            if user is not None and user.active:
                chain.append(user)
    on_call = next((u for u in chain if _phone(u) and away_now(u, now) is None), None)
    for owner in owners:
        if owner is not on_call and (target := person("owner", owner)):
            add(target)
    if on_call is not None and (target := person("on_call", on_call)):
        add(target)
    for user in chain:
        if target := person("person", user):
            add(target)
    lines = await session.execute(
        select(Line.address, Business.name)
        .join(Business, Business.id == Line.business_id)
        .where(Line.channel == "phone", Business.active.is_(True), Business.id != business.id)
        .order_by(Business.name, Line.address)
    )
    for address, name in lines:
        add(Target("business", address, name))
    return found


def _number(typed: str) -> str:
    try:
        return normalise_phone(typed)
    except Invalid:
        raise Invalid("Enter a phone number.", field="number") from None


async def check(session: AsyncSession, business: Business, typed: str, *, now: datetime) -> Target:
    """The target this number is, or a refusal naming why: not on the list (422), or someone
    away now (409, with his status, so she puts the call through to whoever is on call)."""
    number = _number(typed)
    for target in await targets(session, business, now=now):
        if target.number != number:
            continue
        if not target.offered:
            raise Conflict(
                "%(name)s is not available (%(status)s): put the call through to whoever is "
                "on call.",
                field="number",
                name=target.name,
                status=target.away,
            )
        return target
    raise Invalid(
        "This number is not on the business's transfer list: only its owners, its on-call "
        "people and the agency's lines.",
        field="number",
    )


async def secretaries(
    session: AsyncSession, business: Business, me: uuid.UUID, *, now: datetime
) -> list[Target]:
    """The other secretaries who serve the business, by name, each with her state now: only
    those available for calls are offered (two statements)."""
    found = await session.scalars(
        select(User)
        .join(SecretaryAssignment, SecretaryAssignment.user_id == User.id)
        .where(
            SecretaryAssignment.business_id == business.id,
            User.role == Role.SECRETARY,
            User.active.is_(True),
            User.id != me,
        )
        .order_by(User.name, User.id)
    )
    people = list(found.all())
    standing = await states.standings(session, [p.id for p in people], now=now)
    labels = agent_states()
    return [
        Target(
            "secretary",
            "",
            person.name,
            person.id,
            ""
            if standing[person.id].state is AgentState.AVAILABLE
            else labels[standing[person.id].state.value],
        )
        for person in people
    ]


async def check_secretary(
    session: AsyncSession, business: Business, me: uuid.UUID, typed: str, *, now: datetime
) -> Target:
    """The secretary chosen, or a refusal: not one who serves the business (422), or not
    available now (409, with her state)."""
    try:
        wanted = uuid.UUID(typed)
    except ValueError:
        raise Invalid("Choose a secretary of this business.", field="secretary") from None
    for target in await secretaries(session, business, me, now=now):
        if target.person_id != wanted:
            continue
        if not target.offered:
            raise Conflict(
                "%(name)s is not available for calls now (%(status)s).",
                field="secretary",
                name=target.name,
                status=target.away,
            )
        return target
    raise Invalid("Choose a secretary of this business.", field="secretary")


async def her_call(session: AsyncSession, user: User, sip_call_id: str) -> Call:
    """Her call going on now, or 404 (another's call, one not answered, one over)."""
    call = await session.scalar(select(Call).where(Call.sip_call_id == sip_call_id))
    if call is None or call.answered_by_id != user.id:
        raise NotFound("Not found.")
    if call.state != "answered":
        raise Conflict("This call is over.")
    return call


async def request(
    session: AsyncSession,
    user: User,
    sip_call_id: str,
    typed: str,
    kind: str,
    *,
    now: datetime,
    secretary: str = "",
) -> CallTransfer:
    """She asks to put her call through to `typed` (or to the secretary whose id is
    `secretary`): checked against the list, kept, and given the token the SIP address names."""
    call = await her_call(session, user, sip_call_id)
    if kind not in KINDS:
        raise Invalid("Pick how to put the call through.", field="kind")
    business = await session.get_one(Business, call.business_id)
    if secretary:
        target = await check_secretary(session, business, user.id, secretary, now=now)
    else:
        target = await check(session, business, typed, now=now)
    transfer = CallTransfer(
        business_id=business.id,
        call_id=call.id,
        lead_id=call.lead_id,
        by_id=user.id,
        token=secrets.token_hex(8),
        kind=kind,
        target=target.target,
        number=target.number,
        name=target.name,
        person_id=target.person_id,
        outcome="consulting" if kind == "warm" else "requested",
        requested_at=now,
    )
    session.add(transfer)
    await session.flush()
    return transfer


async def _by_token(session: AsyncSession, dialled: str) -> CallTransfer:
    token = dialled.removeprefix(TOKEN_PREFIX)
    transfer = await session.scalar(
        select(CallTransfer).where(CallTransfer.token == token).with_for_update()
    )
    if transfer is None:
        raise NotFound("No transfer has this address.")
    return transfer


async def _still_allowed(session: AsyncSession, transfer: CallTransfer, *, now: datetime) -> None:
    business = await session.get_one(Business, transfer.business_id)
    if transfer.target == "secretary":
        assert transfer.by_id is not None and transfer.person_id is not None
        mine, her = transfer.by_id, str(transfer.person_id)
        await check_secretary(session, business, mine, her, now=now)
    else:
        await check(session, business, transfer.number, now=now)


async def route_question(
    session: AsyncSession,
    direction: str,
    call_id: str,
    caller: str,
    dialled: str,
    *,
    now: datetime,
    her: uuid.UUID | None = None,
    attempt: int = 1,
) -> str:
    """The SIP server's question about a transfer's address `xfer-<token>`:
    - `transfer`: her browser's REFER in the call `call_id`, by her (`her`): may it go?
    - `out`: her own call to him first (warm): shown as the business's line, to his number;
    - `in`: the caller's leg after the REFER: where it goes.
    Refused (404, 409, 422) when the transfer is not hers, not this call's, or its number is
    no longer on the list (he became unavailable meanwhile). To a secretary, the leg rings her
    console phone (`action=ring`) and her ring not taken ends it (`action=overflow`: the SIP
    server answers the caller's leg 480, and the first secretary has the caller back)."""
    transfer = await _by_token(session, dialled)
    call = await session.get_one(Call, transfer.call_id)
    if direction in ("transfer", "out"):
        if her is None or transfer.by_id != her or call.answered_by_id != her:
            raise NotFound("No transfer has this address.")
        await _still_allowed(session, transfer, now=now)
    if direction == "transfer":
        if call.sip_call_id != call_id or call.state != "answered":
            raise NotFound("No transfer has this address.")
        return "action=refer"
    if direction == "out":
        if transfer.kind != "warm" or transfer.consult_call_id not in (None, call_id):
            raise Conflict("This transfer has had its call.")
        if transfer.target == "secretary":
            return await _consult_secretary(session, transfer, call, call_id, now=now)
        transfer.consult_call_id = call_id
        line = await session.scalar(
            select(Line.address)
            .where(Line.business_id == transfer.business_id, Line.channel == "phone")
            .order_by(Line.address)
            .limit(1)
        )
        return f"action=dial;from={line or transfer.number};to={transfer.number}"
    if transfer.leg_call_id not in (None, call_id):
        raise Conflict("This transfer has had its call.")
    if transfer.target == "secretary":
        return await _ring_secretary(session, transfer, call, call_id, attempt, now=now)
    if transfer.leg_call_id is None:
        transfer.leg_call_id, transfer.leg_started_at = call_id, now
        transfer.outcome = "ringing"
    if transfer.target == "business":
        return f"action=line;number={transfer.number}"
    _, record = await _ring_settings(session, call.business_id)
    answer = f"action=out;number={transfer.number}"
    # Recorded as the call's first leg was: the SIP server puts rtpengine into this leg, trunk
    # to trunk (console/voice/voicemail.py collects it); otherwise rtpengine stays out of it.
    return answer + ";record=1" if record else answer


async def _ring_secretary(
    session: AsyncSession,
    transfer: CallTransfer,
    call: Call,
    leg_call_id: str,
    attempt: int,
    *,
    now: datetime,
) -> str:
    """The caller's leg to another secretary: ring her console phone once, with a banner that
    says who put the call through; asked again after her ring (attempt 2 on), it is over."""
    assert transfer.person_id is not None
    her = transfer.person_id
    ringing = transfer.answered_at is None and transfer.ended_at is None
    if transfer.leg_call_id is not None and not (attempt <= 1 and ringing):
        if ringing:  # her ring ran out: the caller's leg fails, and goes back to the first
            transfer.ended_at, transfer.outcome = now, "failed"
            await ring_over(session, transfer, now=now)
            await caller_left(session, transfer, call, now=now)
        return "action=overflow"
    seconds, record = await _ring_settings(session, call.business_id)
    answer = f"action=ring;users={sip_user(her)};seconds={seconds}"
    if record:  # recorded as the call's first leg was (console/voice/voicemail.py collects it)
        answer += ";record=1"
    if transfer.leg_call_id is not None:
        return answer  # the same question again
    await _still_allowed(session, transfer, now=now)
    transfer.leg_call_id, transfer.leg_started_at = leg_call_id, now
    transfer.outcome = "ringing"
    await states.set_state(session, her, AgentState.RINGING, now=now, business_id=call.business_id)
    if sip_user(her) not in call.rung:
        call.rung = [*call.rung, sip_user(her)]
    # Her banner, as for any call that rings her (routes/live.py renders it for her only).
    payload = {"call_id": leg_call_id, "to": [str(her)], "seconds": seconds}
    after_commit(session, LiveEvent(0, str(call.business_id), 0, "call.ringing", payload))
    return answer


async def _ring_settings(session: AsyncSession, business_id: uuid.UUID) -> tuple[int, bool]:
    """The business's ring seconds, and whether it records its calls (one statement)."""
    found = (
        await session.execute(
            select(CallSettings.ring_seconds, RecordingSettings.record_calls)
            .select_from(Business)
            .outerjoin(CallSettings, CallSettings.business_id == Business.id)
            .outerjoin(RecordingSettings, RecordingSettings.business_id == Business.id)
            .where(Business.id == business_id)
        )
    ).first()
    if found is None:
        return DEFAULT_RING_SECONDS, False
    return found.ring_seconds or DEFAULT_RING_SECONDS, bool(found.record_calls)


async def _consult_secretary(
    session: AsyncSession,
    transfer: CallTransfer,
    call: Call,
    consult_call_id: str,
    *,
    now: datetime,
) -> str:
    """Her own call to another secretary first (warm): it rings that one's console phone, with
    a banner saying who asks to talk, and the lead."""
    assert transfer.person_id is not None
    her = transfer.person_id
    seconds, _ = await _ring_settings(session, call.business_id)
    transfer.consult_call_id = consult_call_id
    await states.set_state(session, her, AgentState.RINGING, now=now, business_id=call.business_id)
    payload = {"call_id": consult_call_id, "to": [str(her)], "seconds": seconds}
    after_commit(session, LiveEvent(0, str(call.business_id), 0, "call.ringing", payload))
    return f"action=ring;users={sip_user(her)};seconds={seconds}"


async def ring_over(
    session: AsyncSession, transfer: CallTransfer, *, now: datetime, talked: bool = False
) -> None:
    """The secretary a transfer rang and who did not answer is available again (and, with
    `talked`, one whose talk with the first secretary is over, for the caller's leg to ring)."""
    assert transfer.person_id is not None
    standing = await states.standings(session, [transfer.person_id], now=now)
    done = (AgentState.RINGING, AgentState.ON_CALL) if talked else (AgentState.RINGING,)
    if standing[transfer.person_id].state in done:
        await states.set_state(session, transfer.person_id, AgentState.AVAILABLE, now=now)


async def caller_left(
    session: AsyncSession, transfer: CallTransfer, call: Call, *, now: datetime
) -> None:
    """The leg to another secretary failed: the first secretary has the caller back, unless
    her part was over already (her phone hung up first), in which case the call ends here."""
    if call.state != "answered" or transfer.by_id is None:
        return
    standing = await states.standings(session, [transfer.by_id], now=now)
    if standing[transfer.by_id].state is not AgentState.ON_CALL:
        call.state, call.ended_at, call.end_reason = "ended", now, "transferred"


async def record_event(
    session: AsyncSession, sip_call_id: str, event: str, *, now: datetime
) -> CallTransfer | None:
    """A transfer's leg or her call to him first was answered, ended or failed: the transfer,
    or None when no transfer has that call (or it changed nothing)."""
    transfer = await session.scalar(
        select(CallTransfer)
        .where(
            or_(
                CallTransfer.leg_call_id == sip_call_id, CallTransfer.consult_call_id == sip_call_id
            )
        )
        .with_for_update()
    )
    if transfer is None:
        return None
    if transfer.leg_call_id == sip_call_id:
        if event == "answered" and transfer.answered_at is None:
            transfer.answered_at, transfer.outcome = now, "connected"
            return transfer
        if event in ("ended", "failed", "cancelled") and transfer.ended_at is None:
            transfer.ended_at = now
            if transfer.answered_at is None:
                transfer.outcome = "failed"
            return transfer
        return None
    if event == "answered" and transfer.consult_answered_at is None:
        transfer.consult_answered_at = now
        return transfer
    if event in ("ended", "failed", "cancelled") and transfer.consult_ended_at is None:
        transfer.consult_ended_at = now
        if transfer.outcome == "consulting":  # back to the caller, unless she connects them
            transfer.outcome = "returned"
        return transfer
    return None


async def transferred(session: AsyncSession, call: Call) -> bool:
    """Whether the call was put through (its leg to someone else has started)."""
    found = await session.scalar(
        select(CallTransfer.id)
        .where(CallTransfer.call_id == call.id, CallTransfer.leg_call_id.is_not(None))
        .limit(1)
    )
    return found is not None


async def to_secretary_under_way(session: AsyncSession, call: Call) -> CallTransfer | None:
    """The call's transfer to another secretary whose leg rings her or goes on, if any."""
    found: CallTransfer | None = await session.scalar(
        select(CallTransfer)
        .where(
            CallTransfer.call_id == call.id,
            CallTransfer.target == "secretary",
            CallTransfer.leg_call_id.is_not(None),
            CallTransfer.ended_at.is_(None),
        )
        .limit(1)
    )
    return found


async def recorded_leg(session: AsyncSession, sip_call_id: str) -> CallTransfer | None:
    """The transfer whose caller's leg this SIP call is, to another secretary or to a number,
    if any (its recording is the call's second, on the same lead). A leg to another business's
    line is a call of that business, recorded as its own."""
    found: CallTransfer | None = await session.scalar(
        select(CallTransfer).where(
            CallTransfer.leg_call_id == sip_call_id, CallTransfer.target != "business"
        )
    )
    return found


async def transfers_of_lead(session: AsyncSession, lead_id: uuid.UUID) -> list[CallTransfer]:
    """The lead's transfers, oldest first, for its page: one statement."""
    found = await session.scalars(
        select(CallTransfer)
        .where(CallTransfer.lead_id == lead_id)
        .order_by(CallTransfer.requested_at)
    )
    return list(found.all())
