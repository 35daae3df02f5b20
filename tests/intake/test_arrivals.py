"""The one arrival path: arrivals written in groups answer each as if it had come alone, whatever
its channel; one the database refuses fails alone; `bench.intake` runs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bench import intake as bench_intake
from console.base.db import Database
from console.base.errors import Invalid, NotFound, Unauthorized
from console.channels.lines import add_line
from console.contacts.contact_book import ContactBook
from console.intake import arrivals
from console.intake import writer as writer_module
from console.intake.arrivals import Arrival, Arrived, ById, ByLine
from console.intake.web_forms import form_arrival
from console.intake.writer import ArrivalWriter
from models import Contact, Event, Interaction, Lead, LeadAlarm
from models.leads import PRIORITIES
from tests.factories import counting, make_business

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


async def test_one_group_answers_each_form_as_alone(db: Database) -> None:
    async with db.transaction() as session:
        cohen = await make_business(session, slug="cohen")
        levi = await make_business(session, slug="levi")

    def form(slug: str, key: str, **fields: Any) -> Arrival:
        return form_arrival(slug, key, fields, NOW)

    group = [
        form("cohen", cohen.intake_key, name="דנה", phone="054-2345678", external_id="a"),
        form("cohen", "wrong", phone="054-2345678"),
        form("nobody", cohen.intake_key, phone="054-2345678"),
        form("cohen", cohen.intake_key, phone="not a number"),
        form("cohen", cohen.intake_key, phone="+972542345678", email="Dana@Example.com"),
        form("cohen", cohen.intake_key, phone="0542345678", external_id="a"),  # its twin
        form("levi", levi.intake_key, phone="054-2345678", external_id="a"),  # another business
    ]
    async with db.transaction() as session:
        answers = await arrivals.write(session, group)
    first, wrong_key, no_business, bad_phone, again, twin, elsewhere = answers
    assert isinstance(first, Arrived) and not first.duplicate
    assert isinstance(wrong_key, Unauthorized) and isinstance(no_business, NotFound)
    assert isinstance(bad_phone, Invalid) and bad_phone.field == "phone"
    assert isinstance(again, Arrived) and again.contact_id == first.contact_id
    assert twin == Arrived(first.lead_id, first.contact_id, None, new_lead=False, duplicate=True)
    assert isinstance(elsewhere, Arrived) and elsewhere.contact_id != first.contact_id
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 3
        dana = await session.get_one(Contact, first.contact_id)
        assert (dana.name, dana.email, dana.last_contact_at) == ("דנה", "dana@example.com", NOW)
        seqs = (await session.scalars(select(Event.seq).where(Event.business_id == cohen.id))).all()
        assert sorted(seqs) == [1, 2]
        lead = await session.get_one(Lead, first.lead_id)
        assert (lead.channel, lead.source, lead.sla_minutes) == ("web", "web form", 30)
        assert lead.respond_by is not None and await session.get(LeadAlarm, lead.id) is not None


async def test_a_known_caller_is_filled_in_and_touched_keeping_what_was_set_meanwhile(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller already in the book: a later form fills what the contact lacks and moves its
    last contact forward, never back. The group updates its found contacts in one statement
    that only fills what is empty, so a name a secretary gave the contact after the group read
    it (here: in the same transaction, between the read and the write) is kept."""
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")

    async def send(fields: dict[str, Any], at: datetime) -> Arrived:
        async with db.transaction() as session:
            (answer,) = await arrivals.write(
                session, [form_arrival("cohen", business.intake_key, fields, at)]
            )
        assert isinstance(answer, Arrived)
        return answer

    first = await send({"phone": "054-2345678"}, NOW)
    write = ContactBook.write

    async def named_meanwhile(book: ContactBook) -> None:
        await book.session.execute(
            update(Contact).where(Contact.id == first.contact_id).values(name="Dana Cohen")
        )
        await write(book)

    monkeypatch.setattr(ContactBook, "write", named_meanwhile)
    later = NOW + timedelta(hours=1)
    again = await send({"phone": "0542345678", "name": "דנה", "email": "Dana@Example.com"}, later)
    monkeypatch.setattr(ContactBook, "write", write)
    older = await send({"phone": "+972 54-234-5678", "name": "Someone"}, NOW - timedelta(days=1))
    assert first.contact_id == again.contact_id == older.contact_id
    async with db.transaction(write=False) as session:
        dana = await session.get_one(Contact, first.contact_id)
        assert (dana.name, dana.email, dana.last_contact_at) == (
            "Dana Cohen",
            "dana@example.com",
            later,
        )


async def test_a_group_meeting_a_twin_written_elsewhere_is_written_form_by_form(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
    writer = ArrivalWriter(db)
    repeat = form_arrival(
        "cohen", business.intake_key, {"phone": "054-2345678", "external_id": "x"}, NOW
    )
    first = await writer.receive(repeat)
    real = arrivals._earlier
    blind = [True]

    async def blind_once(*args: Any) -> Any:  # the twin committed after this group looked
        if blind.pop() if blind else False:
            return {}
        return await real(*args)

    monkeypatch.setattr(arrivals, "_earlier", blind_once)
    answers = await asyncio.gather(
        writer.receive(repeat),
        writer.receive(form_arrival("cohen", business.intake_key, {"phone": "052-7654321"}, NOW)),
    )
    assert answers[0] == Arrived(first.lead_id, first.contact_id, None, False, duplicate=True)
    assert not answers[1].duplicate


async def test_groups_written_side_by_side_make_each_person_once(db: Database) -> None:
    """PostgreSQL writes several groups at once: the same new callers in two of them wait for
    each other (never a deadlock), and each person is one contact, each form one lead."""
    async with db.transaction() as session:
        businesses = [await make_business(session, slug=f"b{n}") for n in range(3)]
    writer = ArrivalWriter(db, group=4, parallel=3)
    phones = ["054-2345678", "052-7654321", "053-3456789", "050-4567890"]
    forms = [
        form_arrival(
            business.slug,
            business.intake_key,
            {"phone": phones[n % len(phones)], "external_id": f"form-{n}"},
            NOW,
        )
        for n in range(36)
        for business in [businesses[n % 3]]
    ]
    answers = await asyncio.gather(*(writer.receive(form) for form in forms))
    assert not any(answer.duplicate for answer in answers)
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 36
        contacts = (await session.execute(select(Contact.business_id, Contact.phone))).all()
        assert len(contacts) == len(set(contacts)) == 12  # 4 callers in each of 3 businesses
        for business in businesses:
            seqs = await session.scalars(select(Event.seq).where(Event.business_id == business.id))
            assert sorted(seqs) == list(range(1, 13))
    again = await asyncio.gather(*(writer.receive(form) for form in forms[:6]))
    assert [answer.lead_id for answer in again] == [answer.lead_id for answer in answers[:6]]
    assert all(answer.duplicate for answer in again)


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each group the writers write, in order."""
    sizes: list[int] = []
    write = ArrivalWriter._write

    async def counted(self: ArrivalWriter, group: list[Arrival]) -> Any:
        sizes.append(len(group))
        return await write(self, group)

    monkeypatch.setattr(ArrivalWriter, "_write", counted)
    return sizes


async def cohens_writer(
    db: Database, *, group: int
) -> tuple[ArrivalWriter, Callable[[int], Arrival]]:
    """A writer of `group` forms at most, and the n-th form of one business's site."""
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")

    def form(n: int) -> Arrival:
        return form_arrival("cohen", business.intake_key, {"phone": f"054-234{n:04d}"}, NOW)

    return ArrivalWriter(db, group=group), form


async def test_forms_still_arriving_join_the_group(db: Database, written: list[int]) -> None:
    """A group waits for the forms whose requests the event loop is still reading (here: one
    more each turn of the loop), up to a full group; a lone form goes after one turn."""
    writer, form = await cohens_writer(db, group=5)

    async def arriving(n: int) -> Arrived:
        for _ in range(n):  # the n-th form's request is read n turns of the loop later
            await asyncio.sleep(0)
        return await writer.receive(form(n))

    answers = await asyncio.gather(*(arriving(n) for n in range(7)))
    assert all(isinstance(answer, Arrived) for answer in answers)
    assert written == [5, 2]  # a full group at once, then the two that came after it
    written.clear()
    assert isinstance(await writer.receive(form(99)), Arrived)
    assert written == [1]


async def test_after_a_group_the_next_waits_across_quiet_turns_for_as_many(
    db: Database, written: list[int]
) -> None:
    """Under load a group's callers come back together, but not one per turn of the loop (each
    reads its answer and sends again meanwhile): after a group of 4, four forms arriving two
    quiet turns apart still make one group (stopping at the first quiet turn made groups of 5
    and 59 under bench.intake); when fewer come, they go once GATHER_AT_MOST has passed."""
    writer, form = await cohens_writer(db, group=10)

    async def arriving(n: int) -> Arrived:
        for _ in range(3 * n):  # two quiet turns between one form and the next
            await asyncio.sleep(0)
        return await writer.receive(form(n))

    groups = [
        await asyncio.gather(*(writer.receive(form(n)) for n in range(4))),
        await asyncio.gather(*(arriving(n) for n in range(4, 8))),
        await asyncio.gather(*(arriving(n) for n in range(8, 10))),
    ]
    assert written == [4, 4, 2]
    assert writer.waiting == []
    # New rows' ids are UUIDv7, time first: each group's keys come after the last group's, at
    # the end of the indexes on them (random UUIDv4 keys dirtied a page per row and index).
    firsts = [min(answer.lead_id for answer in group) for group in groups]
    lasts = [max(answer.lead_id for answer in group) for group in groups]
    assert all(answer.lead_id.version == 7 for group in groups for answer in group)
    assert lasts[0] < firsts[1] and lasts[1] < firsts[2]


async def test_a_lone_form_once_the_load_is_gone_waits_for_no_group(
    db: Database, written: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a group of 8, a lone form right away waits (up to GATHER_AT_MOST) for the group's
    callers to come back; one that comes QUIET_AFTER later is written after one turn of the
    loop, without a timed wait: the group may not make a lone arrival wait."""
    writer, form = await cohens_writer(db, group=10)
    slept: list[float] = []

    class Timed:  # the writer's asyncio, its sleeps seen
        def __getattr__(self, name: str) -> Any:
            return getattr(asyncio, name)

        async def sleep(self, delay: float) -> None:
            slept.append(delay)
            await asyncio.sleep(delay)

    monkeypatch.setattr(writer_module, "asyncio", Timed())
    await asyncio.gather(*(writer.receive(form(n)) for n in range(8)))
    assert written == [8] and not any(slept)
    await writer.receive(form(8))  # at once: under load, the others would be on their way
    assert written == [8, 1] and any(slept)
    slept.clear()
    writer.last_answered -= writer_module.QUIET_AFTER  # as if that long had passed
    await writer.receive(form(9))
    assert written == [8, 1, 1] and not any(slept)


async def test_the_intake_benchmark_runs(tmp_path: Path) -> None:
    result = await bench_intake.run(
        "sqlite",
        rate=40,
        seconds=0.25,
        connections=2,
        warmup=0.1,
        work=tmp_path,
        businesses=2,
        existing=30,  # month-old leads in the tables first (closed, no alarms left)
    )
    assert result["existing"] == 30
    assert result["intake"]["fixed"]["statuses"] == {201: 10}
    assert result["ceiling"]["fixed"]["statuses"] == {201: 10}
    assert result["intake_rps"] > 0 and result["ceiling_rps"] > 0
    assert {"intake_rps", "ceiling_rps", "ratio", "p50_ms", "p99_ms"} <= result.keys()


async def lines_of_cohen(db: Database) -> tuple[Any, Any]:
    async with db.transaction() as session:
        cohen = await make_business(session, slug="cohen")
        levi = await make_business(session, slug="levi")
        await add_line(session, cohen, "sms", "+97235551234")
        await add_line(session, cohen, "whatsapp", "1234567890")
        await add_line(session, cohen, "email", "office@cohen.example")
    return cohen, levi


def sms(n: int, phone: str = "054-2345678", line: str = "03-5551234") -> Arrival:
    return Arrival(
        ByLine("sms", (line,)), "sms", NOW, phone=phone, text=f"הודעה {n}", message_id=f"SM{n}"
    )


async def test_every_channel_takes_the_one_path_in_one_group(db: Database) -> None:
    """A group of every kind of arrival: the web form, an SMS and a WhatsApp message on the
    business's lines, an e-mail to one of several recipients, a call, a lead through the API
    (with its idempotency id). One person is one contact across channels; messages and the call
    join the open lead the form opened (each an attempt on it), the API's typed lead opens its
    own; a repeated message id is found; an unknown line refuses only its own arrival."""
    cohen, levi = await lines_of_cohen(db)
    api_lead = uuid.uuid4()
    group = [
        form_arrival("cohen", cohen.intake_key, {"phone": "054-2345678", "message": "טופס"}, NOW),
        sms(1),
        Arrival(
            ByLine("whatsapp", ("1234567890",)),
            "whatsapp",
            NOW,
            phone="+972542345678",
            name="דנה",
            text="וואטסאפ",
            message_id="wamid.1",
        ),
        Arrival(
            ByLine("email", ("someone@else.example", "Office@Cohen.example")),
            "email",
            NOW,
            email="dana@example.com",
            subject="שאלה",
            text="מייל",
            message_id="mail-1",
        ),
        Arrival(ById(cohen.id), "phone", NOW, phone="0542345678", message_id="CA1"),
        Arrival(ById(levi.id), "sms", NOW, phone="054-2345678", text="API", lead_id=api_lead),
        sms(1),  # the same delivery again, in the same group
        sms(2, line="03-5559999"),  # nobody's line
    ]
    writer = ArrivalWriter(db)
    answers = await writer.receive_all(group)
    form, text, chat, mail, call, api, again, stranger = answers
    assert isinstance(stranger, NotFound)
    made = [form, text, chat, mail, call, api]
    assert all(isinstance(answer, Arrived) for answer in [*made, again])
    assert isinstance(form, Arrived) and isinstance(text, Arrived) and isinstance(chat, Arrived)
    assert isinstance(call, Arrived) and isinstance(api, Arrived) and isinstance(mail, Arrived)
    assert isinstance(again, Arrived) and again.duplicate and again.lead_id == text.lead_id
    assert form.contact_id == text.contact_id == chat.contact_id == call.contact_id
    assert mail.contact_id != form.contact_id and api.contact_id != form.contact_id
    assert form.new_lead and text.new_lead is False and text.lead_id == form.lead_id
    assert chat.lead_id == form.lead_id and not chat.new_lead
    assert not call.new_lead and call.lead_id == form.lead_id and call.interaction_id is not None
    assert api.lead_id == api_lead and form.interaction_id is None
    async with db.transaction(write=False) as session:
        leads = {lead.id: lead for lead in await session.scalars(select(Lead))}
        assert len(leads) == 3  # the form (with its messages and the call), the e-mail, the API's
        assert leads[form.lead_id].attempts == 4 and leads[api_lead].attempts == 1
        assert leads[api_lead].business_id == levi.id and leads[api_lead].channel == "sms"
        kinds = sorted(
            (await session.scalars(select(Interaction.kind).order_by(Interaction.kind))).all()
        )
        assert kinds == ["email", "inbound_call", "sms", "whatsapp"]
        events = (await session.execute(select(Event.kind, Event.business_id))).all()
        assert sorted(kind for kind, _ in events) == [
            "lead.created",
            "lead.created",
            "lead.created",
            "lead.updated",
        ]
    repeated = await writer.receive(
        Arrival(ById(levi.id), "sms", NOW, phone="054-2345678", text="API", lead_id=api_lead)
    )
    assert repeated.duplicate and repeated.lead_id == api_lead


async def test_a_repeat_caller_joins_her_open_lead_within_the_business_s_window(
    db: Database,
) -> None:
    """The repeat-caller rule: three missed calls from one number in eight minutes are one lead
    with three attempts and the first call's promise; a message on another channel joins it too.
    A closed lead, a lead older than the business's window, a web form and a typed lead do not
    take the next arrival: it opens its own."""
    cohen, _ = await lines_of_cohen(db)
    writer = ArrivalWriter(db)

    def call(sid: str, at: datetime, phone: str = "054-2345678") -> Arrival:
        return Arrival(ById(cohen.id), "phone", at, phone=phone, message_id=sid)

    first = await writer.receive(call("CA1", NOW))
    again = await writer.receive_all([call("CA2", NOW + timedelta(minutes=3))])
    third = await writer.receive(call("CA3", NOW + timedelta(minutes=8)))
    text = await writer.receive(replace(sms(1), now=NOW + timedelta(minutes=9)))
    assert first.new_lead and not third.new_lead and not text.new_lead
    assert {a.lead_id for a in [first, third, text, *again] if isinstance(a, Arrived)} == {
        first.lead_id
    }
    async with db.transaction(write=False) as session:
        lead = await session.get_one(Lead, first.lead_id)
        assert lead.attempts == 4 and lead.respond_by is not None
        assert lead.created_at == NOW and lead.channel == "phone"
        kinds = (
            await session.scalars(select(Interaction.kind).order_by(Interaction.started_at))
        ).all()
        assert kinds == ["inbound_call"] * 3 + ["sms"]
    promise = lead.respond_by

    # Eight days later, beyond the default window of seven: a lead of its own.
    late = await writer.receive(call("CA4", NOW + timedelta(days=8)))
    assert late.new_lead and late.lead_id != first.lead_id
    # A business that keeps a window of one day: two days later is a new lead as well; a
    # call within the day joins the latest open lead.
    async with db.transaction() as session:
        await session.execute(
            update(type(cohen)).where(type(cohen).id == cohen.id).values(repeat_window_days=1)
        )
    soon = await writer.receive(call("CA5", NOW + timedelta(days=8, hours=5)))
    after = await writer.receive(call("CA6", NOW + timedelta(days=10)))
    assert soon.lead_id == late.lead_id and after.new_lead
    # A closed lead takes nothing: the next call opens a lead.
    async with db.transaction() as session:
        await session.execute(
            update(Lead).where(Lead.id == after.lead_id).values(closed_at=NOW, stage="won")
        )
    reopened = await writer.receive(call("CA7", NOW + timedelta(days=10, minutes=5)))
    assert reopened.new_lead
    # A web form and a lead typed in are requests of their own, open lead or not.
    form = await writer.receive(
        form_arrival("cohen", cohen.intake_key, {"phone": "054-2345678"}, NOW + timedelta(days=10))
    )
    typed = await writer.receive(
        Arrival(ById(cohen.id), "phone", NOW + timedelta(days=10), phone="054-2345678")
    )
    assert form.new_lead and typed.new_lead
    async with db.transaction(write=False) as session:
        assert (await session.get_one(Lead, first.lead_id)).respond_by == promise
        attempts = dict((await session.execute(select(Lead.id, Lead.attempts))).all())
    assert attempts[late.lead_id] == 2 and attempts[reopened.lead_id] == 1


async def test_a_group_costs_the_same_statements_however_many_arrive(db: Database) -> None:
    await lines_of_cohen(db)
    counts = []
    for size in (2, 20):
        group = [sms(n, phone=f"054-23{size:02d}{n:03d}") for n in range(size)]
        group += [sms(1000 + n, phone=f"054-23{size:02d}{n:03d}") for n in range(size)]  # joins
        with counting(db) as statements:
            async with db.transaction() as session:
                answers = await arrivals.write(session, group)
        assert all(isinstance(answer, Arrived) for answer in answers)
        counts.append(len(statements))
    assert counts[0] == counts[1]


async def test_an_arrival_the_database_refuses_fails_alone(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group meets the database's refusal of one of its arrivals (here a priority the
    console lets through by mistake, which the table's check refuses): it is written again
    one arrival at a time, the bad one is answered 422, and every other one is stored."""
    await lines_of_cohen(db)
    monkeypatch.setattr(arrivals, "PRIORITIES", (*PRIORITIES, "bogus"))
    group = [sms(n, phone=f"054-234{n:04d}") for n in range(5)]
    group[2] = replace(group[2], priority="bogus")
    answers = await ArrivalWriter(db).receive_all(group)
    refused = answers.pop(2)
    assert isinstance(refused, Invalid)
    assert all(isinstance(answer, Arrived) and not answer.duplicate for answer in answers)
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 4
        assert await session.scalar(select(func.count()).select_from(Interaction)) == 4


async def test_text_with_nul_characters_is_stored_without_them(db: Database) -> None:
    """PostgreSQL refuses NUL in text: an arrival carrying one is stored without it."""
    cohen, _ = await lines_of_cohen(db)
    fields = {
        "phone": "054-2345678",
        "name": "דנה\x00",
        "message": "a\x00b",
        "external_id": "x\x00",
    }
    (answer,) = await ArrivalWriter(db).receive_all(
        [form_arrival("cohen", cohen.intake_key, fields, NOW)]
    )
    assert isinstance(answer, Arrived)
    async with db.transaction(write=False) as session:
        lead = await session.get_one(Lead, answer.lead_id)
        contact = await session.get_one(Contact, answer.contact_id)
    assert (lead.message, lead.external_id, contact.name) == ("ab", "x", "דנה")
