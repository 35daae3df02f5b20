"""The SIP server's side of Mazkira over HTTP, signed as Kamailio signs: whom a call rings, what
happened to it, and the record and lead that follow; refusals for anything not signed by it."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select

from console.base.db import Database
from console.business import periods
from console.business.periods import Period
from console.channels.lines import add_line
from console.people.accounts import link_user
from console.reports.kpis import compute_kpis
from console.voice.signatures import sign
from console.voice.states import AgentState, set_state
from models import Business, Contact, Interaction, Lead, User
from models.agents import AgentStatus
from models.voice import Call
from tests.factories import counting, make_business, make_user, sign_in
from tests.voice.conftest import SECRET

LINE = "+97235551234"
CALLER = "+972542345678"


async def post(
    client: httpx.AsyncClient,
    path: str,
    fields: dict[str, str],
    *,
    secret: str = SECRET,
    skew: int = 0,
) -> httpx.Response:
    body = urlencode(fields).encode()
    stamp = str(int(time.time()) + skew)
    return await client.post(
        path,
        content=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Mazkira-Timestamp": stamp,
            "X-Mazkira-Signature": sign(secret, stamp, body),
        },
    )


def ask(call_id: str, attempt: int = 1, dialled: str = LINE) -> dict[str, str]:
    return {
        "direction": "in",
        "call_id": call_id,
        "caller": CALLER,
        "caller_name": "",
        "dialled": dialled,
        "attempt": str(attempt),
    }


async def shop_with_secretary(db: Database) -> tuple[Business, User]:
    async with db.transaction() as session:
        shop = await make_business(session, name="אינסטלציה כהן")
        await add_line(session, shop, "phone", LINE)
        michal = await make_user(session, "secretary", name="מיכל")
        await link_user(session, michal, shop)
        await set_state(session, michal.id, AgentState.AVAILABLE, now=_now())
    return shop, michal


def _now() -> datetime:
    return datetime.now(UTC)


async def state_of(db: Database, user: User) -> str:
    async with db.transaction(write=False) as session:
        row = await session.get(AgentStatus, user.id)
        return row.state if row else "offline"


async def test_a_call_rings_the_free_secretary_and_its_record_follows_the_events(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    _, michal = await shop_with_secretary(db)
    call_id = f"{uuid.uuid4().hex}@carrier"
    first = await post(phone_client, "/sip/route", ask(call_id))
    assert first.status_code == 200, first.text
    assert first.text == f"action=ring;users={michal.id.hex};seconds=20"
    assert await state_of(db, michal) == "ringing"
    # The same question again (a retry): the same answer, nothing written twice.
    again = await post(phone_client, "/sip/route", ask(call_id))
    assert again.text == first.text
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.state == "ringing" and call.lead_id is not None
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1
    answered = {"event": "answered", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", answered)).text == "recorded"
    assert (await post(phone_client, "/sip/events", answered)).text == "unchanged"
    assert await state_of(db, michal) == "on_call"
    ended = {"event": "ended", "call_id": call_id, "reason": "caller_hangup"}
    assert (await post(phone_client, "/sip/events", ended)).text == "recorded"
    assert (await post(phone_client, "/sip/events", ended)).text == "unchanged"
    assert await state_of(db, michal) == "wrap_up"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None
        assert (call.state, call.answered_by_id, call.end_reason) == (
            "ended",
            michal.id,
            "caller_hangup",
        )
        assert call.ringing_at and call.answered_at and call.ended_at
        interaction = await session.get_one(Interaction, call.interaction_id)
        assert interaction.user_id == michal.id and interaction.status == "draft"
        assert interaction.ended_at == call.ended_at  # the real length, from the SIP server
        lead = await session.get_one(Lead, call.lead_id)
        assert lead.claimed_by_id == michal.id and lead.first_response_at is not None
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 1


async def test_a_call_nobody_answers_becomes_a_call_back_lead(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    _, michal = await shop_with_secretary(db)
    call_id = uuid.uuid4().hex
    assert (await post(phone_client, "/sip/route", ask(call_id))).text.startswith("action=ring")
    # She let it ring out: asked again, it rings her again or waits; the caller then hangs up.
    second = await post(phone_client, "/sip/route", ask(call_id, attempt=2))
    assert second.status_code == 200
    cancelled = {"event": "cancelled", "call_id": call_id}
    assert (await post(phone_client, "/sip/events", cancelled)).text == "recorded"
    assert (await post(phone_client, "/sip/events", cancelled)).text == "unchanged"
    assert await state_of(db, michal) == "available"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.state == "abandoned"
        lead = await session.get_one(Lead, call.lead_id)
        interaction = await session.get_one(Interaction, call.interaction_id)
        assert (lead.priority, interaction.outcome) == ("high", "no_answer")
    # A late question about a call that is over: nobody is rung.
    late = await post(phone_client, "/sip/route", ask(call_id, attempt=3))
    assert late.text == "action=overflow"


async def test_nobody_free_waits_then_overflows_to_a_missed_call_lead(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    _, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        await set_state(session, michal.id, AgentState.BREAK, now=_now(), reason="meal")
    call_id = uuid.uuid4().hex
    first = await post(phone_client, "/sip/route", ask(call_id))
    assert first.text.startswith("action=wait;seconds=")
    async with db.transaction() as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None
        call.arrived_at = call.arrived_at.replace(year=call.arrived_at.year - 1)  # waited long
    last = await post(phone_client, "/sip/route", ask(call_id, attempt=2))
    assert last.text == "action=overflow"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and (call.state, call.end_reason) == ("missed", "overflow")
        interaction = await session.get_one(Interaction, call.interaction_id)
        assert interaction.outcome == "no_answer"


async def test_refusals_change_nothing(db: Database, phone_client: httpx.AsyncClient) -> None:
    _, michal = await shop_with_secretary(db)
    call_id = uuid.uuid4().hex
    forged = await post(phone_client, "/sip/route", ask(call_id), secret="not-the-secret")
    assert forged.status_code == 401
    stale = await post(phone_client, "/sip/route", ask(call_id), skew=-120)
    assert stale.status_code == 401
    unknown = await post(phone_client, "/sip/route", ask(call_id, dialled="+97235550000"))
    assert unknown.status_code == 404
    bad = await post(phone_client, "/sip/route", {**ask(call_id), "attempt": "zero"})
    assert bad.status_code == 422
    unsigned = await phone_client.post("/sip/route", content=urlencode(ask(call_id)))
    assert unsigned.status_code == 401
    # A forged event about a real call, and an event about no call.
    assert (await post(phone_client, "/sip/route", ask(call_id))).status_code == 200
    event = {"event": "answered", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", event, secret="forged")).status_code == 401
    stranger = {"event": "answered", "call_id": call_id, "user": uuid.uuid4().hex}
    assert (await post(phone_client, "/sip/events", stranger)).status_code == 409
    nothing = {"event": "ended", "call_id": "no-such-call"}
    assert (await post(phone_client, "/sip/events", nothing)).status_code == 404
    assert await state_of(db, michal) == "ringing"
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == 1
        assert await session.scalar(select(func.count()).select_from(Lead)) == 1


async def test_without_a_sip_secret_the_sip_routes_refuse(client: httpx.AsyncClient) -> None:
    answer = await post(client, "/sip/route", ask("x"))
    assert answer.status_code == 401


async def test_a_secretary_calls_out_shown_as_the_business(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    _, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        other = await make_business(session)
        await add_line(session, other, "phone", "+97235550001")
    # Two leads, each from a call: one of her business, one of another.
    assert (await post(phone_client, "/sip/route", ask("in-1"))).status_code == 200
    other_call = ask("in-2", dialled="+97235550001")
    assert (await post(phone_client, "/sip/route", other_call)).status_code == 200
    async with db.transaction(write=False) as session:
        leads = {c.sip_call_id: c.lead_id for c in (await session.scalars(select(Call))).all()}
    out = {
        "direction": "out",
        "call_id": "out-1",
        "caller": michal.id.hex,
        "dialled": "0527654321",
        "lead": str(leads["in-1"]),
        "attempt": "1",
    }
    answer = await post(phone_client, "/sip/route", out)
    assert answer.text == f"action=dial;from={LINE}"
    # A lead of a business she does not serve is not hers to call from.
    theirs = {**out, "call_id": "out-2", "lead": str(leads["in-2"])}
    assert (await post(phone_client, "/sip/route", theirs)).status_code == 404
    answered = {"event": "answered", "call_id": "out-1"}
    assert (await post(phone_client, "/sip/events", answered)).text == "recorded"
    ended = {"event": "ended", "call_id": "out-1", "reason": "agent_hangup"}
    assert (await post(phone_client, "/sip/events", ended)).text == "recorded"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == "out-1"))
        assert call is not None
        assert (call.direction, call.state, call.answered_by_id) == ("out", "ended", michal.id)
        log = await session.get_one(Interaction, call.interaction_id)
        assert (log.kind, log.user_id, log.ended_at) == ("outbound_call", michal.id, call.ended_at)
        assert await session.scalar(select(func.count()).select_from(Call)) == 3


async def test_a_waiting_calls_questions_write_nothing_while_nobody_is_free(
    db: Database,
    phone_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    steady_roster: None,
) -> None:
    """Many calls waiting ask "anyone free now?" every few seconds: "still nobody" is answered
    from a read transaction (no write lock, no row lock) of one statement, the call's row (the
    decision reads the roster in memory); a write only when someone is rung."""
    _, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        await set_state(session, michal.id, AgentState.BREAK, now=_now(), reason="meal")
    older, younger = f"{uuid.uuid4().hex}@carrier", f"{uuid.uuid4().hex}@carrier"
    assert (await post(phone_client, "/sip/route", ask(older))).text.startswith("action=wait")
    assert (await post(phone_client, "/sip/route", ask(younger))).text.startswith("action=wait")
    kinds: list[bool] = []
    opened = db.transaction

    def spied(*, write: bool = True) -> Any:
        kinds.append(write)
        return opened(write=write)

    monkeypatch.setattr(db, "transaction", spied)
    with counting(db) as statements:
        for attempt in (2, 3):
            again = await post(phone_client, "/sip/route", ask(older, attempt=attempt))
            assert again.text.startswith("action=wait"), again.text
            # and a repeated question (Kamailio's retry) is read too
            again = await post(phone_client, "/sip/route", ask(older, attempt=attempt))
            assert again.text.startswith("action=wait"), again.text
    assert kinds == [False] * 4, kinds
    assert not [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert not [s for s in statements if "FOR UPDATE" in s.upper()], statements
    assert len(statements) == 4, statements
    # She comes back: both calls ask at once; the older one rings her (a write), the younger
    # is still told to wait (she is kept for the older), never both ringing her.
    async with db.transaction() as session:
        await set_state(session, michal.id, AgentState.AVAILABLE, now=_now())
    kinds.clear()
    answers = await asyncio.gather(
        post(phone_client, "/sip/route", ask(younger, attempt=2)),
        post(phone_client, "/sip/route", ask(older, attempt=4)),
    )
    assert [a.text.split(";")[0] for a in answers] == ["action=wait", "action=ring"]
    assert answers[1].text == f"action=ring;users={michal.id.hex};seconds=20"
    assert kinds.count(True) == 1, kinds
    assert await state_of(db, michal) == "ringing"
    async with db.transaction(write=False) as session:
        states = dict((await session.execute(select(Call.sip_call_id, Call.state))).all())
    assert states == {older: "ringing", younger: "waiting"}


async def call_back_of(db: Database, call_id: str) -> tuple[Call, Lead, Interaction]:
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.lead_id and call.interaction_id
        lead = await session.get_one(Lead, call.lead_id)
        interaction = await session.get_one(Interaction, call.interaction_id)
        return call, lead, interaction


async def test_a_caller_who_hangs_up_in_the_queue_and_an_overflow_become_call_back_leads(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """Abandoned while waiting (a CANCEL before anyone was rung) and overflowed past the wait
    limit: each call ends unanswered and its lead is a call-back (high priority, 'no answer',
    open and unanswered, so it stays in the queue with its SLA clock), once."""
    shop, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        await set_state(session, michal.id, AgentState.BREAK, now=_now(), reason="meal")
    waiting = uuid.uuid4().hex
    assert (await post(phone_client, "/sip/route", ask(waiting))).text.startswith("action=wait")
    cancelled = {"event": "cancelled", "call_id": waiting}
    assert (await post(phone_client, "/sip/events", cancelled)).text == "recorded"
    assert (await post(phone_client, "/sip/events", cancelled)).text == "unchanged"
    call, lead, interaction = await call_back_of(db, waiting)
    assert (call.state, call.end_reason, call.ringing_at, call.rung) == (
        "abandoned",
        "cancelled",
        None,
        [],
    )
    assert call.ended_at is not None and call.answered_by_id is None
    assert (lead.priority, interaction.outcome) == ("high", "no_answer")
    assert lead.closed_at is None and lead.first_response_at is None and lead.respond_by
    assert "call back" in lead.subject.lower() or "חזור" in lead.subject
    assert await state_of(db, michal) == "break"  # nobody rang her: her break stands

    overflow = uuid.uuid4().hex
    assert (await post(phone_client, "/sip/route", ask(overflow))).text.startswith("action=wait")
    async with db.transaction() as session:
        row = await session.scalar(select(Call).where(Call.sip_call_id == overflow))
        assert row is not None
        row.arrived_at = row.arrived_at.replace(year=row.arrived_at.year - 1)  # waited long
    last = await post(phone_client, "/sip/route", ask(overflow, attempt=2))
    assert last.text == "action=overflow"
    call, lead, interaction = await call_back_of(db, overflow)
    assert (call.state, call.end_reason) == ("missed", "overflow")
    assert (lead.priority, interaction.outcome) == ("high", "no_answer")
    assert lead.closed_at is None and lead.first_response_at is None
    # The caller hangs up after the rejection: nothing changes.
    late = {"event": "cancelled", "call_id": overflow}
    assert (await post(phone_client, "/sip/events", late)).text == "unchanged"
    # The record as the KPIs read it (the overflowed call arrived a year ago, out of the period).
    today = periods.local_today(shop, _now())
    async with db.transaction(write=False) as session:
        found = (await compute_kpis(session, [shop], Period(today, today), now=_now()))[shop.id]
    assert (found.calls, found.calls_abandoned, found.calls_missed, found.calls_answered) == (
        1,
        1,
        0,
        0,
    )
    assert (found.answer_rate, found.abandonment_rate, found.service_level) == (0.0, 100.0, 0.0)
    assert found.average_speed_of_answer is None


async def test_a_repeat_caller_s_missed_call_joins_his_open_lead_as_a_call_back(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """A caller with an open lead at the business hangs up in the queue: the call joins that
    lead (another attempt), which rises to high priority with the missed call in its history,
    and keeps its subject."""
    _, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        await set_state(session, michal.id, AgentState.BREAK, now=_now(), reason="meal")
    first = uuid.uuid4().hex
    assert (await post(phone_client, "/sip/route", ask(first))).text.startswith("action=wait")
    async with db.transaction() as session:
        row = await session.scalar(select(Call).where(Call.sip_call_id == first))
        assert row is not None and row.lead_id is not None
        lead = await session.get_one(Lead, row.lead_id)
        lead.subject, lead.priority = "Kitchen quote", "normal"
        row.state = "ended"  # that call was answered and is over
    second = uuid.uuid4().hex
    assert (await post(phone_client, "/sip/route", ask(second))).text.startswith("action=wait")
    cancelled = {"event": "cancelled", "call_id": second}
    assert (await post(phone_client, "/sip/events", cancelled)).text == "recorded"
    call, lead, interaction = await call_back_of(db, second)
    assert call.lead_id == row.lead_id and lead.attempts == 2
    assert (lead.subject, lead.priority, interaction.outcome) == (
        "Kitchen quote",
        "high",
        "no_answer",
    )
    assert call.state == "abandoned" and lead.closed_at is None


async def test_a_call_from_a_withheld_or_unreadable_number_is_still_a_lead(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """Never a lead lost: a caller whose number is withheld ("anonymous") or not a phone number
    still rings the secretary and is a lead, its contact without a number and the number as
    received in its subject and on the call; missed, it is a call-back lead that says so."""
    _, michal = await shop_with_secretary(db)
    withheld, garbled = uuid.uuid4().hex, uuid.uuid4().hex
    for call_id, caller in ((withheld, "anonymous"), (garbled, "12ab#")):
        first = await post(phone_client, "/sip/route", {**ask(call_id), "caller": caller})
        assert first.status_code == 200 and first.text.startswith("action=ring")
        await post(phone_client, "/sip/events", {"event": "cancelled", "call_id": call_id})
    async with db.transaction(write=False) as session:
        for call_id, caller, marked in (
            (withheld, "anonymous", "מספר חסוי"),  # the business speaks Hebrew
            (garbled, "12ab#", "12ab#: יש לבדוק את המספר"),
        ):
            call, lead, interaction = await call_back_of(db, call_id)
            assert (call.caller, call.state, interaction.outcome) == (
                caller,
                "abandoned",
                "no_answer",
            )
            contact = await session.get_one(Contact, lead.contact_id)
            assert (contact.phone, contact.email) == (None, None)
            assert lead.priority == "high" and lead.respond_by is not None
            assert lead.subject.startswith("שיחה שלא נענתה") and lead.subject.endswith(marked)
        contacts = await session.scalar(select(func.count()).select_from(Contact))
        assert contacts == 2  # two callers without a number are not made one person
    # Her queue and the lead's page show such a lead.
    await sign_in(phone_client, michal.email)
    assert (await phone_client.get("/inbox")).status_code == 200
    _, lead, _ = await call_back_of(db, garbled)
    page = await phone_client.get(f"/leads/{lead.id}")
    assert page.status_code == 200 and "יש לבדוק את המספר" in page.text


async def test_a_new_call_is_decided_in_one_writing_transaction_and_few_statements(
    db: Database,
    phone_client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    steady_roster: None,
) -> None:
    """A new call's question: its lead (the arrival path's statements), whom it rings and its
    row, all in one writing transaction, nothing read first, the call's row written once."""
    await shop_with_secretary(db)
    warm = uuid.uuid4().hex  # the statements compiled once; she is free again after it
    await post(phone_client, "/sip/route", {**ask(warm), "caller": "+972527654321"})
    await post(phone_client, "/sip/events", {"event": "cancelled", "call_id": warm})
    kinds: list[bool] = []
    opened = db.transaction

    def spied(*, write: bool = True) -> Any:
        kinds.append(write)
        return opened(write=write)

    monkeypatch.setattr(db, "transaction", spied)
    with counting(db) as statements:
        answer = await post(phone_client, "/sip/route", ask(uuid.uuid4().hex))
    assert answer.text.startswith("action=ring")
    assert kinds == [True]
    written = [s.split("(")[0].split(" SET")[0].strip() for s in statements]
    assert [w for w in written if w.endswith(" calls")] == ["INSERT INTO calls"], written
    assert not [s for s in statements if "FOR UPDATE" in s and "agent_states" not in s]
    # The line's business (1), the arrival path (10: the business, earlier arrivals, contacts,
    # policies, four INSERTs, the event's number and row), the decision from the roster (none)
    # and setting her ringing if she is still free (3: her row, her span closed, the next
    # opened), and the call's row (1). It was 19: the decision read 2 (3 on PostgreSQL) and
    # setting her ringing read her row first.
    assert len(statements) == 15, "\n".join(statements)


async def test_an_overflow_marks_the_call_back_without_reading_back_what_it_wrote(
    db: Database, phone_client: httpx.AsyncClient, steady_roster: None
) -> None:
    """A new call that overflows at once (nobody serves the business) and a waiting call past
    its limit: after the decision, the interaction and the lead the call wrote are marked a
    call-back by two UPDATEs, nothing read back; the call's row is still written once."""
    _, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        other = await make_business(session)
        await add_line(session, other, "phone", "+97235550001")
        await set_state(session, michal.id, AgentState.BREAK, now=_now(), reason="meal")
    warm = {**ask(uuid.uuid4().hex, dialled="+97235550001"), "caller": "+972527654321"}
    await post(phone_client, "/sip/route", warm)  # the statements compiled once
    nobody, waited = uuid.uuid4().hex, uuid.uuid4().hex
    with counting(db) as statements:
        first = await post(phone_client, "/sip/route", ask(nobody, dialled="+97235550001"))
    assert first.text == "action=overflow"
    assert _after_the_decision(statements) == [
        "UPDATE interactions",
        "UPDATE leads",
        "UPDATE businesses",  # the event's number
        "INSERT INTO events",
        "INSERT INTO calls",
    ]
    # The line's business (1), the arrival path (10), the decision (none: the roster), the
    # call-back (2, and its event's 2) and the call's row (1): 16; reading both rows back first
    # made it 19, the decision's own read 17.
    assert len(statements) == 16, "\n".join(statements)
    assert (await post(phone_client, "/sip/route", ask(waited))).text.startswith("action=wait")
    async with db.transaction() as session:
        row = await session.scalar(select(Call).where(Call.sip_call_id == waited))
        assert row is not None
        row.arrived_at = row.arrived_at.replace(year=row.arrived_at.year - 1)  # waited long
    with counting(db) as statements:
        last = await post(phone_client, "/sip/route", ask(waited, attempt=2))
    assert last.text == "action=overflow"
    assert sorted(_after_the_decision(statements)) == [
        "INSERT INTO events",
        "UPDATE businesses",
        "UPDATE calls",  # once
        "UPDATE interactions",
        "UPDATE leads",
    ]
    for call_id in (nobody, waited):
        call, lead, interaction = await call_back_of(db, call_id)
        assert (call.state, call.end_reason) == ("missed", "overflow")
        assert (lead.priority, interaction.outcome) == ("high", "no_answer")
        assert lead.subject == "שיחה שלא נענתה: לחזור ללקוח"


def _after_the_decision(statements: list[str]) -> list[str]:
    """What the statements after the routing decision did (their verb and table): the last
    five, since the decision itself reads nothing (the roster); checked for no read among them."""
    return [" ".join(s.split("(")[0].split(" SET")[0].split()[:3]) for s in statements[-5:]]


async def test_a_transfer_goes_only_to_the_business_s_list_and_its_legs_are_logged(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """The panel's refusals (off the list 422, the owner away 409) and the SIP server's: a REFER
    is agreed only for her own transfer of that call to someone still available; the legs'
    events log when he answered and how long he spoke (tests/voice/test_transfer.py drives the
    same through Kamailio)."""
    from console.people.availability import set_availability
    from models.on_call import OnCallRota
    from models.voice import CallTransfer
    from tests.factories import csrf_token

    shop, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        yossi = await make_user(session, "owner", shop, name="Yossi")
        avi = await make_user(session, "owner", shop, name="Avi")
        yossi.phone, avi.phone = "+972527654321", "+972546667788"
        other = await make_user(session, "secretary", shop, name="Dana")
        chain = [{"user": avi.id.hex, "reach": "call"}]
        session.add(
            OnCallRota(business_id=shop.id, ack_minutes=10, chain=chain, weekly=[], dates=[])
        )
        await set_availability(
            session, yossi, kind="meeting", note="Holon", timezone=shop.timezone, now=_now()
        )
    call_id = f"{uuid.uuid4().hex}@carrier"
    await post(phone_client, "/sip/route", ask(call_id))
    answered = {"event": "answered", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", answered)).text == "recorded"
    await sign_in(phone_client, michal.email)
    token = await csrf_token(phone_client, "/inbox")

    async def put_through(number: str, kind: str = "blind") -> httpx.Response:
        form = {"number": number, "kind": kind, "csrf_token": token}
        return await phone_client.post(f"/phone/transfer/{call_id}", data=form)

    off = await put_through("03-555-9999")
    assert off.status_code == 422 and 'value="03-555-9999"' in off.text
    away = await put_through("052-7654321")
    assert away.status_code == 409 and "Holon" in away.text  # his status and note, listed
    assert "transfer-number-error" in away.text
    made = await put_through("054-6667788", "warm")
    assert made.status_code == 200 and 'data-transfer-kind="warm"' in made.text
    async with db.transaction(write=False) as session:
        transfer = await session.scalar(select(CallTransfer))
        assert transfer is not None and (transfer.target, transfer.outcome) == (
            "on_call",
            "consulting",
        )
    address = f"xfer-{transfer.token}"

    def refer(caller: str, call: str = call_id) -> dict[str, str]:
        return {"direction": "transfer", "call_id": call, "caller": caller, "dialled": address}

    for refused in (refer(other.id.hex), refer(michal.id.hex, "another@carrier")):
        answer = await post(phone_client, "/sip/route", {**refused, "attempt": "1"})
        assert answer.status_code == 404, refused
    first = {"direction": "out", "call_id": "consult@b", "caller": michal.id.hex}
    consult = await post(phone_client, "/sip/route", {**first, "dialled": address, "attempt": "1"})
    assert consult.text == f"action=dial;from={LINE};to=+972546667788"
    for event in ("answered", "ended"):
        happened = {"event": event, "call_id": "consult@b", "reason": ""}
        assert (await post(phone_client, "/sip/events", happened)).text == "recorded"
    agreed = await post(phone_client, "/sip/route", {**refer(michal.id.hex), "attempt": "1"})
    assert agreed.text == "action=refer"
    leg = await post(phone_client, "/sip/route", ask("leg@carrier", dialled=address))
    assert leg.text == "action=out;number=+972546667788"
    for event in ("answered", "ended"):
        happened = {"event": event, "call_id": "leg@carrier", "reason": ""}
        assert (await post(phone_client, "/sip/events", happened)).text == "recorded"
    ended = {"event": "ended", "call_id": call_id, "reason": "agent_hangup"}
    assert (await post(phone_client, "/sip/events", ended)).text == "recorded"
    async with db.transaction(write=False) as session:
        done = await session.get_one(CallTransfer, transfer.id)
        assert done.outcome == "connected" and done.talk_seconds is not None
        assert done.consult_answered_at and done.consult_ended_at
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.end_reason == "transferred"
    page = await phone_client.get(f"/leads/{call.lead_id}")
    assert 'id="transfers"' in page.text and "Avi" in page.text
    # Once Avi is away too, the SIP server agrees to no REFER to him.
    async with db.transaction() as session:
        await set_availability(session, avi, kind="away", timezone=shop.timezone, now=_now())
    again = await post(phone_client, "/sip/route", {**refer(michal.id.hex), "attempt": "1"})
    assert again.status_code == 409


async def test_a_call_goes_to_another_secretary_s_console_and_its_record_follows_her(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """Put through to another secretary of the business who is available: only such a one is
    offered (on a break: 409; not of this business: 422, in place); the caller's leg rings her
    console with a banner naming who put it through and the same lead; she answers: the call is
    hers (its row, the lead, a call log of her own), the first wraps up, and the call's talk
    runs from the first answer to the caller's hang-up (tests/voice/test_transfer.py drives the
    same through Kamailio with two browsers)."""
    from models.voice import CallTransfer
    from tests.factories import csrf_token

    shop, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        dana = await make_user(session, "secretary", shop, name="Dana")
        noa = await make_user(session, "secretary", shop, name="Noa")
        elsewhere = await make_business(session, name="Levi")
        rina = await make_user(session, "secretary", elsewhere, name="Rina")
        await set_state(session, noa.id, AgentState.BREAK, reason="meal", now=_now())
        await set_state(session, rina.id, AgentState.AVAILABLE, now=_now())
    call_id = f"{uuid.uuid4().hex}@carrier"
    await post(phone_client, "/sip/route", ask(call_id))
    answered = {"event": "answered", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", answered)).text == "recorded"
    async with db.transaction() as session:  # Dana comes back from her break now
        await set_state(session, dana.id, AgentState.AVAILABLE, now=_now())
    await sign_in(phone_client, michal.email)
    token = await csrf_token(phone_client, "/inbox")
    panel = await phone_client.get(f"/phone/transfer/{call_id}")
    assert "Dana" in panel.text and "Noa" in panel.text and "Rina" not in panel.text
    assert f'value="{dana.id.hex}"' in panel.text and f'value="{noa.id.hex}"' not in panel.text

    async def put_through(secretary: str, kind: str = "blind") -> httpx.Response:
        form = {"secretary": secretary, "kind": kind, "csrf_token": token}
        return await phone_client.post(f"/phone/transfer/{call_id}", data=form)

    on_break = await put_through(noa.id.hex)
    assert on_break.status_code == 409 and "transfer-secretary-error" in on_break.text
    assert "Noa" in on_break.text and "לא פנויה לשיחות" in on_break.text  # her state beside
    for refused in (rina.id.hex, michal.id.hex, "nobody"):
        answer = await put_through(refused)
        assert answer.status_code == 422 and "transfer-secretary-error" in answer.text
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(CallTransfer)) == 0
    made = await put_through(dana.id.hex)
    assert made.status_code == 200 and 'data-transfer-kind="blind"' in made.text
    async with db.transaction(write=False) as session:
        transfer = await session.scalar(select(CallTransfer))
        assert transfer is not None
        assert (transfer.target, transfer.person_id, transfer.name) == (
            "secretary",
            dana.id,
            "Dana",
        )
    address = f"xfer-{transfer.token}"
    refer = {"direction": "transfer", "call_id": call_id, "caller": michal.id.hex}
    agreed = await post(phone_client, "/sip/route", {**refer, "dialled": address, "attempt": "1"})
    assert agreed.text == "action=refer"
    # The caller's leg rings Dana's console, once; a repeated question gets the same answer.
    leg = f"{uuid.uuid4().hex}@carrier"
    rings = await post(phone_client, "/sip/route", ask(leg, dialled=address))
    assert rings.text == f"action=ring;users={dana.id.hex};seconds=20"
    again = await post(phone_client, "/sip/route", ask(leg, dialled=address))
    assert again.text == rings.text
    assert await state_of(db, dana) == "ringing"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.lead_id is not None
    banner = await phone_client.get(f"/phone/calls/{leg}")
    assert banner.status_code == 404  # Michal's phone is not the one it rings
    await sign_in(phone_client, dana.email)
    banner = await phone_client.get(f"/phone/calls/{leg}")
    assert banner.status_code == 200 and "שהעבירה" in banner.text and "מיכל" in banner.text
    assert f'data-call="{leg}"' in banner.text and f'data-lead="{call.lead_id}"' in banner.text
    wrong = {"event": "answered", "call_id": leg, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", wrong)).status_code == 409
    took = {"event": "answered", "call_id": leg, "user": dana.id.hex}
    assert (await post(phone_client, "/sip/events", took)).text == "recorded"
    assert (await state_of(db, dana), await state_of(db, michal)) == ("on_call", "on_call")
    hers = {"event": "ended", "call_id": call_id, "reason": "agent_hangup"}  # Michal leaves
    assert (await post(phone_client, "/sip/events", hers)).text == "recorded"
    assert (await post(phone_client, "/sip/events", hers)).text == "unchanged"
    assert await state_of(db, michal) == "wrap_up"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and (call.state, call.answered_by_id) == ("answered", dana.id)
        lead = await session.get_one(Lead, call.lead_id)
        assert lead.claimed_by_id == dana.id
        logs = (
            await session.scalars(select(Interaction).where(Interaction.lead_id == lead.id))
        ).all()
        by = {log.user_id: log for log in logs}
        assert set(by) == {michal.id, dana.id} and call.interaction_id == by[dana.id].id
        assert by[michal.id].ended_at is not None and by[dana.id].ended_at is None
    over = {"event": "ended", "call_id": leg, "reason": "caller_hangup"}
    assert (await post(phone_client, "/sip/events", over)).text == "recorded"
    assert await state_of(db, dana) == "wrap_up"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.answered_at is not None and call.ended_at is not None
        assert (call.state, call.answered_by_id, call.end_reason) == (
            "ended",
            dana.id,
            "caller_hangup",
        )
        done = await session.get_one(CallTransfer, transfer.id)
        assert done.outcome == "connected" and done.talk_seconds is not None
        dana_log = await session.get_one(Interaction, call.interaction_id)
        assert dana_log.user_id == dana.id and dana_log.ended_at == call.ended_at
    page = await phone_client.get(f"/leads/{call.lead_id}")
    assert page.status_code == 200 and 'id="transfers"' in page.text and "Dana" in page.text


async def test_a_secretary_who_lets_a_put_through_call_ring_gives_it_back_to_the_first(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """Her ring not taken: the SIP server asks again (attempt 2) and is told to give up (480 to
    the caller's leg, which its first secretary still has); she is available again, the
    transfer failed, the call goes on with the first."""
    from models.voice import CallTransfer
    from tests.factories import csrf_token

    shop, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        dana = await make_user(session, "secretary", shop, name="Dana")
    call_id = f"{uuid.uuid4().hex}@carrier"
    await post(phone_client, "/sip/route", ask(call_id))
    answered = {"event": "answered", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", answered)).text == "recorded"
    async with db.transaction() as session:
        await set_state(session, dana.id, AgentState.AVAILABLE, now=_now())
    await sign_in(phone_client, michal.email)
    form = {"secretary": dana.id.hex, "kind": "blind"}
    form["csrf_token"] = await csrf_token(phone_client, "/inbox")
    made = await phone_client.post(f"/phone/transfer/{call_id}", data=form)
    assert made.status_code == 200
    async with db.transaction(write=False) as session:
        transfer = await session.scalar(select(CallTransfer))
        assert transfer is not None
    leg, address = f"{uuid.uuid4().hex}@carrier", f"xfer-{transfer.token}"
    assert (await post(phone_client, "/sip/route", ask(leg, dialled=address))).text.startswith(
        "action=ring"
    )
    gone = await post(phone_client, "/sip/route", ask(leg, attempt=2, dialled=address))
    assert gone.text == "action=overflow"
    assert (await state_of(db, dana), await state_of(db, michal)) == ("available", "on_call")
    async with db.transaction(write=False) as session:
        assert (await session.get_one(CallTransfer, transfer.id)).outcome == "failed"
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and (call.state, call.answered_by_id) == ("answered", michal.id)


async def test_a_secretary_talks_to_another_first_then_puts_the_caller_through(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """Warm, to another secretary: the first's own call rings her console (`action=ring`, her
    banner saying who asks to talk first), she is on a call while they talk and available when
    that ends, so the caller's leg may ring her next."""
    from models.voice import CallTransfer
    from tests.factories import csrf_token

    shop, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        dana = await make_user(session, "secretary", shop, name="Dana")
    call_id = f"{uuid.uuid4().hex}@carrier"
    await post(phone_client, "/sip/route", ask(call_id))
    answered = {"event": "answered", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", answered)).text == "recorded"
    async with db.transaction() as session:
        await set_state(session, dana.id, AgentState.AVAILABLE, now=_now())
    await sign_in(phone_client, michal.email)
    form = {"secretary": dana.id.hex, "kind": "warm"}
    form["csrf_token"] = await csrf_token(phone_client, "/inbox")
    made = await phone_client.post(f"/phone/transfer/{call_id}", data=form)
    assert made.status_code == 200 and 'data-transfer-kind="warm"' in made.text
    async with db.transaction(write=False) as session:
        transfer = await session.scalar(select(CallTransfer))
        assert transfer is not None and transfer.outcome == "consulting"
    address = f"xfer-{transfer.token}"
    first = {"direction": "out", "call_id": "consult@b", "caller": michal.id.hex}
    consult = await post(phone_client, "/sip/route", {**first, "dialled": address, "attempt": "1"})
    assert consult.text == f"action=ring;users={dana.id.hex};seconds=20"
    assert await state_of(db, dana) == "ringing"
    await sign_in(phone_client, dana.email)
    banner = await phone_client.get("/phone/calls/consult@b")
    assert banner.status_code == 200 and "מיכל" in banner.text
    took = {"event": "answered", "call_id": "consult@b", "user": dana.id.hex}
    assert (await post(phone_client, "/sip/events", took)).text == "recorded"
    assert await state_of(db, dana) == "on_call"
    over = {"event": "ended", "call_id": "consult@b", "reason": "agent_hangup"}
    assert (await post(phone_client, "/sip/events", over)).text == "recorded"
    assert await state_of(db, dana) == "available"
    refer = {"direction": "transfer", "call_id": call_id, "caller": michal.id.hex}
    agreed = await post(phone_client, "/sip/route", {**refer, "dialled": address, "attempt": "1"})
    assert agreed.text == "action=refer"
    leg = await post(phone_client, "/sip/route", ask("leg@carrier", dialled=address))
    assert leg.text == f"action=ring;users={dana.id.hex};seconds=20"
    async with db.transaction(write=False) as session:
        done = await session.get_one(CallTransfer, transfer.id)
        assert done.consult_answered_at and done.consult_ended_at and done.outcome == "ringing"
