"""A secretary's reject button is its own outcome: Kamailio reports her 603 as `rejected` (her
contact names her), the call's record says who declined it, she is not rung for it again, the
call goes on to the next secretary or the queue as routing says, and the KPIs, the agency's
report and the lead's call list show it beside missed and abandoned calls."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from console.base.db import Database
from console.business import periods
from console.business.periods import Period
from console.channels.lines import add_line
from console.people.accounts import link_user
from console.reports.kpis import compute_kpis
from console.voice.states import AgentState, set_state
from models.voice import Call
from tests.factories import make_business, make_user, sign_in
from tests.voice.test_sip_http import LINE, ask, post, state_of


async def test_a_rejected_ring_goes_on_and_is_its_own_outcome(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    now = datetime.now(UTC)
    async with db.transaction() as session:
        shop = await make_business(session, name="אינסטלציה כהן")
        await add_line(session, shop, "phone", LINE)
        michal = await make_user(session, "secretary", name="מיכל")
        noa = await make_user(session, "secretary", name="Noa")
        for person in (michal, noa):
            await link_user(session, person, shop)
        # Michal has been idle longest: she is rung first.
        await set_state(session, michal.id, AgentState.AVAILABLE, now=now - timedelta(minutes=5))
        await set_state(session, noa.id, AgentState.AVAILABLE, now=now - timedelta(minutes=1))
        admin = await make_user(session, "admin")

    call_id = f"{uuid.uuid4().hex}@carrier"
    first = await post(phone_client, "/sip/route", ask(call_id))
    assert first.text == f"action=ring;users={michal.id.hex};seconds=20"
    # Someone who was not rung cannot decline it; nothing changes.
    stranger = {"event": "rejected", "call_id": call_id, "user": noa.id.hex}
    assert (await post(phone_client, "/sip/events", stranger)).status_code == 409
    # Michal presses reject: her 603 comes as "rejected" (a repeat changes nothing).
    rejected = {"event": "rejected", "call_id": call_id, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", rejected)).text == "recorded"
    assert (await post(phone_client, "/sip/events", rejected)).text == "unchanged"
    assert await state_of(db, michal) == "available"
    # The failure route asks what next: Noa rings, not Michal again.
    second = await post(phone_client, "/sip/route", ask(call_id, attempt=2))
    assert second.text == f"action=ring;users={noa.id.hex};seconds=20"
    assert (
        await post(
            phone_client,
            "/sip/events",
            {"event": "rejected", "call_id": call_id, "user": noa.id.hex},
        )
    ).text == "recorded"
    # Both are free, both said no: the call waits in the queue for anyone else.
    third = await post(phone_client, "/sip/route", ask(call_id, attempt=3))
    assert third.text.startswith("action=wait;seconds=")
    assert await state_of(db, michal) == "available" and await state_of(db, noa) == "available"
    # The caller gives up: a call-back lead, and the call's outcome is "rejected".
    cancelled = {"event": "cancelled", "call_id": call_id}
    assert (await post(phone_client, "/sip/events", cancelled)).text == "recorded"
    async with db.transaction(write=False) as session:
        call = await session.scalar(select(Call).where(Call.sip_call_id == call_id))
        assert call is not None and call.answered_by_id is None
        assert call.declined == [michal.id.hex, noa.id.hex] and call.rejected_at is not None
        lead_id = call.lead_id

    # A second call: Michal declines it, Noa answers it.
    answered_id = uuid.uuid4().hex
    assert (await post(phone_client, "/sip/route", ask(answered_id))).text.endswith(";seconds=20")
    async with db.transaction(write=False) as session:
        rung = await session.scalar(select(Call.ringing).where(Call.sip_call_id == answered_id))
    first_rung, other = (michal, noa) if rung == [michal.id.hex] else (noa, michal)
    declined = {"event": "rejected", "call_id": answered_id, "user": first_rung.id.hex}
    assert (await post(phone_client, "/sip/events", declined)).text == "recorded"
    again = await post(phone_client, "/sip/route", ask(answered_id, attempt=2))
    assert again.text == f"action=ring;users={other.id.hex};seconds=20"
    taken = {"event": "answered", "call_id": answered_id, "user": other.id.hex}
    assert (await post(phone_client, "/sip/events", taken)).text == "recorded"
    # Too late to decline a call that is answered.
    late = {"event": "rejected", "call_id": answered_id, "user": other.id.hex}
    assert (await post(phone_client, "/sip/events", late)).text == "unchanged"
    ended = {"event": "ended", "call_id": answered_id, "reason": "caller_hangup"}
    assert (await post(phone_client, "/sip/events", ended)).text == "recorded"

    # The KPIs list it beside missed and abandoned calls, and count it in the rates.
    today = periods.local_today(shop, datetime.now(UTC))
    async with db.transaction(write=False) as session:
        found = (await compute_kpis(session, [shop], Period(today, today), now=datetime.now(UTC)))[
            shop.id
        ]
    assert (found.calls, found.calls_answered, found.calls_rejected) == (2, 1, 1)
    assert (found.calls_abandoned, found.calls_missed, found.answer_rate) == (0, 0, 50.0)

    # The lead's call list says who declined it.
    await sign_in(phone_client, admin.email)
    page = await phone_client.get(f"/leads/{lead_id}")
    assert page.status_code == 200
    assert 'id="lead-calls"' in page.text
    assert "מיכל, Noa" in page.text
    assert "outcome-rejected" in page.text

    # The agency's report: each declined ring counts as declined, not as missed.
    report = await phone_client.get(
        f"/agency/reports/secretaries.csv?from={today.isoformat()}&to={today.isoformat()}"
    )
    assert report.status_code == 200, report.text
    rows = {
        row["secretary"]: row for row in csv.DictReader(io.StringIO(report.text.lstrip("\ufeff")))
    }
    assert rows["מיכל"]["declined_rings"] == ("2" if first_rung == michal else "1")
    assert rows["מיכל"]["missed_rings"] == "0" and rows["Noa"]["missed_rings"] == "0"
    assert rows["Noa"]["declined_rings"] == ("1" if first_rung == michal else "2")


async def test_a_call_she_declined_and_that_waits_does_not_hold_her_back(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    """Through the SIP server's questions: Michal declines a call and nobody else is free, so it
    waits; a newer call to the business rings her at once (the older one may not have her, so
    it keeps her for nobody), and the older one goes on waiting without ringing her."""
    async with db.transaction() as session:
        shop = await make_business(session, name="אינסטלציה כהן")
        await add_line(session, shop, "phone", LINE)
        michal = await make_user(session, "secretary", name="מיכל")
        await link_user(session, michal, shop)
        await set_state(session, michal.id, AgentState.AVAILABLE, now=datetime.now(UTC))
    older = f"{uuid.uuid4().hex}@carrier"
    ring = f"action=ring;users={michal.id.hex};seconds=20"
    assert (await post(phone_client, "/sip/route", ask(older))).text == ring
    declined = {"event": "rejected", "call_id": older, "user": michal.id.hex}
    assert (await post(phone_client, "/sip/events", declined)).text == "recorded"
    waits = await post(phone_client, "/sip/route", ask(older, attempt=2))
    assert waits.text.startswith("action=wait;seconds=")
    assert (await post(phone_client, "/sip/route", ask(older, attempt=3))).text.startswith(
        "action=wait;"
    )
    newer = f"{uuid.uuid4().hex}@carrier"
    assert (await post(phone_client, "/sip/route", ask(newer))).text == ring
    assert await state_of(db, michal) == "ringing"
    still = await post(phone_client, "/sip/route", ask(older, attempt=4))
    assert still.text.startswith("action=wait;seconds=")
    async with db.transaction(write=False) as session:
        calls = {call.sip_call_id: call for call in (await session.scalars(select(Call))).all()}
    assert (calls[older].state, calls[older].declined) == ("waiting", [michal.id.hex])
    assert (calls[newer].state, calls[newer].ringing) == ("ringing", [michal.id.hex])
