"""The workspace's hard rules, called without HTTP: contacts by any phone format, atomic claims,
the first response, required script answers, hand-off checks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from console.base.db import Database
from console.base.errors import Conflict, Invalid, NotFound
from console.contacts.contacts import find_or_create_contact, normalise_phone, search_contacts
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls, leads, scripts
from console.tasks import tasks
from tests.factories import make_business, make_user

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)  # a Sunday morning in Israel


@pytest.mark.parametrize(
    "written", ["054-2345678", "+972-54-234-5678", "972542345678", "0542345678", " 054 234 5678 "]
)
def test_every_israeli_way_of_writing_a_number_is_one_number(written: str) -> None:
    assert normalise_phone(written) == "+972542345678"


@pytest.mark.parametrize("bad", ["", "abc", "12", "050-1234567", "054-23456789012", "<script>"])
def test_numbers_that_cannot_be_are_refused(bad: str) -> None:
    with pytest.raises(Invalid):
        normalise_phone(bad)


async def test_one_contact_per_business_by_phone_or_email(db: Database) -> None:
    async with db.transaction() as session:
        a, b = await make_business(session), await make_business(session)
        first, created = await find_or_create_contact(session, a, phone="054-2345678", name="דנה")
        again, created_again = await find_or_create_contact(session, a, phone="972542345678")
        by_mail, _ = await find_or_create_contact(session, a, email="Dana@Example.com")
        same_by_mail, _ = await find_or_create_contact(session, a, email="dana@example.COM")
        other_business, created_other = await find_or_create_contact(
            session, b, phone="+972-54-234-5678"
        )
        secretary = await make_user(session, "secretary", a)
    assert created and not created_again and again.id == first.id
    assert by_mail.id == same_by_mail.id and by_mail.id != first.id
    assert created_other and other_business.id != first.id
    async with db.transaction(write=False) as session:
        for query in ("054 234 5678", "+972542345678", "דנה", "dana@", "2345678"):
            found = await search_contacts(session, secretary, query)
            assert found and all(c.business_id == a.id for c in found), query


async def test_of_many_secretaries_claiming_at_once_exactly_one_wins(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        team = [await make_user(session, "secretary", business) for _ in range(5)]
        lead = await arrivals.create_lead(
            session, team[0], NewLead(business_id=str(business.id), phone="052-7654321"), now=NOW
        )

    async def claim(secretary: object) -> str:
        try:
            async with db.transaction() as session:
                await leads.claim_lead(session, secretary, lead.id, now=NOW)  # type: ignore[arg-type]
            return "won"
        except Conflict as refusal:
            return refusal.message

    results = await asyncio.gather(*(claim(s) for s in team))
    assert results.count("won") == 1
    winner = team[results.index("won")]
    assert all(r == f"{winner.name} took this lead a moment ago." for r in results if r != "won")
    async with db.transaction() as session:  # claiming one's own lead again is a no-op
        again = await leads.claim_lead(session, winner, lead.id, now=NOW)
        assert again.claimed_by_id == winner.id


async def test_leads_outside_the_users_businesses_are_not_found(db: Database) -> None:
    async with db.transaction() as session:
        mine, theirs = await make_business(session), await make_business(session)
        secretary = await make_user(session, "secretary", mine)
        owner = await make_user(session, "owner", theirs)
        lead = await arrivals.create_lead(
            session, owner, NewLead(business_id=str(theirs.id), phone="052-7654321"), now=NOW
        )
    async with db.transaction() as session:
        for attempt in (
            leads.claim_lead(session, secretary, lead.id, now=NOW),
            leads.get_lead(session, secretary, lead.id),
            leads.move_stage(session, secretary, lead.id, stage="won", now=NOW),
            calls.start_interaction(session, secretary, lead.id, kind="inbound_call", now=NOW),
            arrivals.create_lead(
                session,
                secretary,
                NewLead(business_id=str(theirs.id), phone="054-2345678"),
                now=NOW,
            ),
        ):
            with pytest.raises(NotFound):
                await attempt


async def test_a_call_stamps_the_first_response_and_wrap_up_checks_the_script(
    db: Database,
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
        await scripts.save_draft(
            session,
            secretary,
            business,
            scripts.ScriptDraft(
                greeting="{business}, {secretary} speaking. Hello {contact}!",
                questions="* Address | text\nUrgent? | yesno\n* Call back on | phone",
            ),
        )
        await scripts.publish_draft(session, business, now=NOW)
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(business.id), phone="052-7654321", name="Yael"),
            now=NOW,
        )
    later = NOW + timedelta(minutes=3)
    async with db.transaction() as session:
        note = await calls.add_note(session, secretary, lead.id, text="called, busy", now=NOW)
        assert (await leads.get_lead(session, secretary, lead.id)).first_response_at is None
        call = await calls.start_interaction(
            session, secretary, lead.id, kind="outbound_call", now=later
        )
        assert call.script_version == 1 and note.kind == "note"
        same = await calls.start_interaction(
            session, secretary, lead.id, kind="outbound_call", now=later
        )
        assert same.id == call.id  # no second draft
    async with db.transaction() as session:
        fresh = await leads.get_lead(session, secretary, lead.id)
        assert fresh.first_response_at == later and fresh.stage == "contacted"
        assert fresh.claimed_by_id == secretary.id
        await calls.autosave(
            session,
            secretary,
            call.id,
            notes="<script>x</script> שלום",
            summary="",
            answers={"q1": "Herzl 1"},
            now=later,
        )
    with pytest.raises(Invalid, match="Call back on"):
        async with db.transaction() as session:
            await calls.wrap_up(
                session,
                secretary,
                call.id,
                notes="n",
                summary="s",
                answers={},
                outcome="answered",
                now=later,
            )
    with pytest.raises(Invalid, match=r"outcome"):
        async with db.transaction() as session:
            await calls.wrap_up(
                session,
                secretary,
                call.id,
                notes="n",
                summary="s",
                answers={"q3": "054-2345678"},
                outcome="made-up",
                now=later,
            )
    async with db.transaction() as session:
        wrapped = await calls.wrap_up(
            session,
            secretary,
            call.id,
            notes="<script>x</script> שלום",
            summary="booked",
            answers={"q3": "054-2345678", "q2": "yes"},
            outcome="booked_meeting",
            now=later + timedelta(minutes=4),
        )
    done = wrapped.call
    assert wrapped.moved_to == "meeting"  # the outcome moved the lead on (leads/outcomes.py)
    assert done.answers == {"q1": "Herzl 1", "q2": "yes", "q3": "+972542345678"}
    assert done.duration_seconds == 240 and done.notes.startswith("<script>")
    with pytest.raises(NotFound):  # another secretary cannot touch her log
        async with db.transaction() as session:
            other = await make_user(session, "secretary", business)
            await calls.autosave(
                session, other, call.id, notes="", summary="", answers={}, now=later
            )

    due = "2026-11-22T13:30"  # Israel time, two and a half hours on
    async with db.transaction() as session:
        task = await tasks.hand_off(
            session,
            secretary,
            lead.id,
            tasks.HandOff(assignee_id=str(owner.id), title="Send a quote", due=due),
            now=later,
        )
        assert [t.id for t in await tasks.my_tasks(session, owner)] == [task.id]
        assert task.due_at == datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
    for bad in (
        tasks.HandOff(assignee_id=str(owner.id), title="x", due="2026-11-22T10:00"),  # past
        tasks.HandOff(assignee_id=str(owner.id), title="x", due="tomorrow"),
        tasks.HandOff(assignee_id=str(owner.id), title="x", due=""),
        tasks.HandOff(assignee_id=str(owner.id), title=" ", due=due),
        tasks.HandOff(assignee_id="not-a-user", title="x", due=due),
        tasks.HandOff(assignee_id=str(owner.id), title="x", due=due, priority="whenever"),
    ):
        with pytest.raises(Invalid):
            async with db.transaction() as session:
                await tasks.hand_off(session, secretary, lead.id, bad, now=later)


async def test_pipeline_stages_close_and_reopen(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(business.id), phone="052-7654321"),
            now=NOW,
        )
        quoted = await leads.move_stage(
            session, secretary, lead.id, stage="quote", deal_value="12,500", now=NOW
        )
        assert quoted.closed_at is None and str(quoted.deal_value) == "12500.00"
        for stage, value, reason in [("done", "", ""), ("lost", "", ""), ("won", "-5", "")]:
            with pytest.raises(Invalid):
                await leads.move_stage(
                    session,
                    secretary,
                    lead.id,
                    stage=stage,
                    deal_value=value,
                    lost_reason=reason,
                    now=NOW,
                )
        lost = await leads.move_stage(
            session, secretary, lead.id, stage="lost", lost_reason="too expensive", now=NOW
        )
        assert lost.closed_at == NOW and lost.lost_reason == "too expensive"
        reopened = await leads.move_stage(session, secretary, lead.id, stage="meeting", now=NOW)
        assert reopened.closed_at is None and reopened.lost_reason == ""
