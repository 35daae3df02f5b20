"""A group's rows in one statement (`console.base.many_rows.RowsInsert`), and the timestamps SQLite
stores: what is written reads back exactly as the ORM would have written it, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from console.base.db import Database
from console.base.many_rows import RowsInsert, execute_core
from models import Contact, Event
from models.base import new_id
from tests.factories import make_business, statements_sent

JERUSALEM_WINTER = timezone(timedelta(hours=2))
THEN = datetime(2026, 11, 24, 18, 47, 29, 120_000, tzinfo=JERUSALEM_WINTER)


async def test_rows_go_in_one_statement_with_their_defaults_and_json(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    contacts = [
        {"id": new_id(), "business_id": business.id, "name": name, "phone": phone, "email": None}
        for name, phone in (("דנה כהן", "+972542345678"), ("יוסי לוי", "+972522345678"))
    ]
    payloads = [{"lead_id": str(new_id()), "n": 1}, {"nested": {"list": [1, 2]}}]
    with statements_sent(db) as sent:
        async with db.transaction() as session:
            await RowsInsert(Contact.metadata.tables["contacts"])(session, contacts)
            await RowsInsert(Event.metadata.tables["events"])(
                session,
                [
                    {"business_id": business.id, "seq": seq, "kind": "test", "payload": payload}
                    for seq, payload in enumerate(payloads, start=1)
                ],
            )
    inserts = [(sql, many) for sql, many in sent if sql.lstrip().upper().startswith("INSERT")]
    # PostgreSQL: one statement each, not a row at a time; SQLite: one executemany each.
    assert len(inserts) == 2
    assert all(many for _, many in inserts) == db.is_sqlite
    async with db.transaction(write=False) as session:
        found = {c.name: c for c in await session.scalars(select(Contact))}
        written = [e.payload for e in await session.scalars(select(Event).order_by(Event.seq))]
    assert set(found) == {"דנה כהן", "יוסי לוי"}
    dana = found["דנה כהן"]
    assert dana.phone == "+972542345678" and dana.email is None
    # Left out, so given their defaults as the ORM gives them: callables per row, scalars.
    assert (dana.tags, dana.company, dana.notes, dana.abc_class_locked) == ([], "", "", False)
    assert dana.lifetime_value == Decimal("0")
    assert dana.created_at is not None and dana.created_at.tzinfo is not None
    assert written == payloads


async def test_a_taken_key_fails_the_statement_and_writes_none_of_it(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    row = {"id": new_id(), "business_id": business.id, "name": "", "phone": "+972542345678"}
    insert = RowsInsert(Contact.metadata.tables["contacts"])
    async with db.transaction() as session:
        await insert(session, [{**row, "email": None}])
    twin = {**row, "id": new_id(), "email": None}
    other = {**row, "id": new_id(), "phone": "+972522345678", "email": None}
    with pytest.raises(IntegrityError):  # as the web form's group writer expects it
        async with db.transaction() as session:
            await insert(session, [other, twin])
    async with db.transaction(write=False) as session:
        phones = list(await session.scalars(select(Contact.phone)))
    assert phones == ["+972542345678"]


async def test_sqlite_keeps_utc_text_that_sorts_and_reads_back_as_the_moment(
    db: Database,
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        for n, at in enumerate((THEN, THEN.replace(microsecond=0), THEN + timedelta(days=400))):
            session.add(
                Contact(
                    business_id=business.id, name=f"c{n}", phone=f"+97254234567{n}", created_at=at
                )
            )
    async with db.transaction(write=False) as session:
        read = list(await session.scalars(select(Contact.created_at).order_by(Contact.name)))
        later = list(await session.scalars(select(Contact.name).where(Contact.created_at > THEN)))
        if db.is_sqlite:
            stored = list(
                await session.scalars(text("SELECT created_at FROM contacts ORDER BY name"))
            )
    assert read == [THEN, THEN.replace(microsecond=0), THEN + timedelta(days=400)]
    assert all(moment.tzinfo == UTC for moment in read)
    assert later == ["c2"]
    if db.is_sqlite:  # as SQLAlchemy's DATETIME writes it: UTC, microseconds always there
        assert stored == [
            "2026-11-24 16:47:29.120000",
            "2026-11-24 16:47:29.000000",
            "2027-12-29 16:47:29.120000",
        ]


async def test_a_core_statement_sees_the_orm_changes_not_yet_flushed(db: Database) -> None:
    """`execute_core` goes past the ORM's execute, except when the session holds changes its
    autoflush would write first: the statement still sees them."""
    async with db.transaction() as session:
        business = await make_business(session)
        assert [*(await execute_core(session, select(Contact.name)))] == []
        session.add(Contact(business_id=business.id, name="ממתין", phone="+972542345678"))
        names = [name for (name,) in await execute_core(session, select(Contact.name))]
    assert names == ["ממתין"]
