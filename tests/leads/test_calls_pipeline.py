"""A call's hard rules (issue 21, points 9 and 10): its talk never counts her absence, its outcome
moves the lead as its business says, its date answers are dates a person could mean, and a call
not wrapped up stays in her "mine" list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.base.db import Database
from console.base.errors import Invalid
from console.intake import new_calls
from console.intake.arrivals import NewLead
from console.leads import calls, leads, outcomes, scripts
from console.leads.leads import InboxFilters
from console.people.audit import Actor
from tests.factories import make_business, make_user

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
IDLE = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)


def test_the_talk_ends_an_idle_time_after_her_last_activity() -> None:
    assert calls.talk_ended(NOW, NOW + 15 * MINUTE, IDLE) is None
    assert calls.talk_ended(NOW, NOW + 16 * MINUTE, IDLE) == NOW + IDLE
    assert calls.talk_ended(NOW, NOW + timedelta(hours=5), IDLE) == NOW + IDLE


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("0001-01-01", True),
        ("1899-12-31", True),
        ("2026-02-30", True),
        ("9999-12-31", True),
        ("someday", True),
        ("1950-06-01", False),
        ("2026-12-24", False),
    ],
)
def test_a_date_answer_is_a_date_a_person_could_mean(typed: str, refused: bool) -> None:
    questions = [{"id": "q1", "text": "When?", "kind": "date", "required": False, "choices": []}]
    if refused:
        with pytest.raises(Invalid) as refusal:
            scripts.check_answers(questions, {"q1": typed}, final=True)
        assert refusal.value.field == "answers[q1]"  # shown beside that answer
    else:
        assert scripts.check_answers(questions, {"q1": typed}, final=True) == {"q1": typed}
    # while she types nothing is checked: what she typed is kept as typed
    assert scripts.check_answers(questions, {"q1": typed}, final=False) == {"q1": typed}


async def test_absence_is_never_talk_time(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        new = NewLead(business_id=str(business.id), phone="052-7654321", priority="urgent")
        call = await new_calls.open_and_log(session, secretary, new, now=NOW)
        lead = await leads.get_lead(session, secretary, call.lead_id)
        assert (lead.priority, lead.claimed_by_id, call.status) == ("urgent", secretary.id, "draft")

    async def save(at: datetime, notes: str, still_here: bool = False) -> None:
        async with db.transaction() as session:
            await calls.autosave(
                session,
                secretary,
                call.id,
                notes=notes,
                summary="",
                answers={},
                now=at,
                still_here=still_here,
                idle=IDLE,
            )

    await save(NOW + 5 * MINUTE, "she asks about a leak")  # typing: activity
    await save(NOW + 18 * MINUTE, "she asks about a leak", still_here=True)  # listening
    await save(NOW + 30 * MINUTE, "she asks about a leak")  # the tab closed: no change
    # Back three hours later; what she types now is after the talk, which ended 15 minutes
    # after her last activity.
    await save(NOW + timedelta(hours=3), "she asks about a leak; call her back")
    await save(NOW + timedelta(hours=3, minutes=2), "more notes")
    async with db.transaction() as session:
        done = await calls.wrap_up(
            session,
            secretary,
            call.id,
            notes="more notes",
            summary="",
            answers={},
            outcome="call_back",
            now=NOW + timedelta(hours=3, minutes=5),
            idle=IDLE,
        )
    assert done.call.ended_at == NOW + 18 * MINUTE + IDLE
    assert done.call.duration_seconds == 33 * 60 and done.moved_to is None

    # Gone without a word: the wrap-up the next morning counts an idle time after the start.
    async with db.transaction() as session:
        second = await calls.start_interaction(
            session, secretary, call.lead_id, kind="outbound_call", now=NOW + timedelta(hours=4)
        )
    async with db.transaction() as session:
        done = await calls.wrap_up(
            session,
            secretary,
            second.id,
            notes="",
            summary="",
            answers={},
            outcome="no_answer",
            now=NOW + timedelta(hours=20),
            idle=IDLE,
        )
    assert done.call.duration_seconds == IDLE.total_seconds()


async def test_outcomes_move_the_pipeline_as_the_business_says(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        admin = await make_user(session, "admin")

    async def call_with(outcome: str, phone: str) -> tuple[str | None, str, str]:
        """A new call wrapped up with `outcome`: where the lead went and its stage now."""
        async with db.transaction() as session:
            new = NewLead(business_id=str(business.id), phone=phone)
            call = await new_calls.open_and_log(session, secretary, new, now=NOW)
            done = await calls.wrap_up(
                session,
                secretary,
                call.id,
                notes="",
                summary="",
                answers={},
                outcome=outcome,
                now=NOW + MINUTE,
            )
            lead = await leads.get_lead(session, secretary, call.lead_id)
            return done.moved_to, lead.stage, lead.lost_reason

    # The defaults: a meeting set is the meeting stage, a quote sent the quote stage.
    assert await call_with("booked_meeting", "052-7654321") == ("meeting", "meeting", "")
    assert await call_with("sent_quote", "052-7654322") == ("quote", "quote", "")
    assert await call_with("info_given", "052-7654323") == (None, "contacted", "")

    async with db.transaction() as session:
        found = await session.get_one(type(business), business.id)
        with pytest.raises(Invalid) as refusal:  # won needs its deal value: not a choice here
            await outcomes.save_outcome_stages(
                session, Actor.command_line(NOW), found, {"answered": "won"}
            )
        assert refusal.value.field == "answered"
        await outcomes.save_outcome_stages(
            session,
            Actor(admin, NOW, "127.0.0.1"),
            found,
            {"not_interested": "lost", "sent_quote": "meeting"},
        )
    assert await call_with("booked_meeting", "052-7654324") == (None, "contacted", "")
    assert await call_with("sent_quote", "052-7654325") == ("meeting", "meeting", "")
    moved, stage, reason = await call_with("not_interested", "052-7654326")
    assert (moved, stage) == ("lost", "lost") and reason

    # Forward only: a meeting set on a lead at the quote stage leaves it there.
    async with db.transaction() as session:
        new = NewLead(business_id=str(business.id), phone="052-7654327")
        call = await new_calls.open_and_log(session, secretary, new, now=NOW)
        await leads.move_stage(session, secretary, call.lead_id, stage="quote", now=NOW)
        await outcomes.save_outcome_stages(
            session,
            Actor(admin, NOW, "127.0.0.1"),
            await session.get_one(type(business), business.id),
            {"answered": "meeting"},
        )
        done = await calls.wrap_up(
            session,
            secretary,
            call.id,
            notes="",
            summary="",
            answers={},
            outcome="answered",
            now=NOW + MINUTE,
        )
        assert done.moved_to is None
        assert (await leads.get_lead(session, secretary, call.lead_id)).stage == "quote"


async def test_a_call_not_wrapped_up_tops_her_mine_list(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        other = await make_user(session, "secretary", business)
        new = NewLead(business_id=str(business.id), phone="052-7654321", name="Yael")
        call = await new_calls.open_and_log(session, secretary, new, now=NOW)
        await leads.release_lead(session, secretary, call.lead_id, now=NOW)  # no longer "mine"
    async with db.transaction(write=False) as session:
        mine = await leads.inbox(session, secretary, InboxFilters(holder="mine"))
        everyone = await leads.inbox(session, secretary, InboxFilters())
        theirs = await leads.inbox(session, other, InboxFilters(holder="mine"))
    assert [(c.interaction_id, c.contact_name) for c in mine.unfinished] == [(call.id, "Yael")]
    assert mine.rows == [] and everyone.unfinished == [] and theirs.unfinished == []
