"""A web-form group looks up its earlier leads and its contacts by (business, key) pairs with one
index probe per pair, on both databases, whatever the table holds: the plans are read back.

Before, PostgreSQL answered `business_id IN (…) AND external_id IN (…)` by reading every lead
of the businesses named and filtering them, and SQLite read every contact of them to match a
phone OR an e-mail: each group's lookups grew with the tables."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text

from bench.intake import mobile_numbers
from console.base.db import Database
from console.contacts.contact_book import ContactBook
from console.contacts.contacts import normalise_phone
from console.intake import arrivals
from console.intake.arrivals import Arrival, Arrived, ById
from console.intake.web_forms import form_arrival
from tests.factories import make_business

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
PER_BUSINESS = 300


@contextmanager
def plans_of(db: Database, *tables: str) -> Iterator[list[str]]:
    """The plan of each single statement that reads one of `tables`, asked of the database on
    the same cursor, with the same parameters, just before the statement runs."""
    plans: list[str] = []

    def explain(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if many or not statement.lstrip().upper().startswith(("SELECT", "WITH")):
            return
        if not any(re.search(rf"\b(FROM|JOIN) {table}\b", statement) for table in tables):
            return
        sqlite = conn.dialect.name == "sqlite"
        cursor.execute(("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + statement, parameters)
        plans.append("\n".join(str(row[-1]) for row in cursor.fetchall()))

    event.listen(db.engine.sync_engine, "before_cursor_execute", explain)
    try:
        yield plans
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", explain)


async def test_lookups_probe_the_unique_indexes_once_per_pair(db: Database) -> None:
    async with db.transaction() as session:
        cohen = await make_business(session, slug="cohen")
        levi = await make_business(session, slug="levi")
    phones = mobile_numbers(2 * PER_BUSINESS, random.Random(7))
    forms = [
        form_arrival(
            business.slug,
            business.intake_key,
            {
                "phone": phones[n],
                "email": f"c{n}@example.com",
                "external_id": f"x{n % PER_BUSINESS}",
            },
            NOW,
        )
        for n, business in enumerate([cohen] * PER_BUSINESS + [levi] * PER_BUSINESS)
    ]
    async with db.transaction() as session:
        made = await arrivals.write(session, forms)
    assert all(isinstance(answer, Arrived) for answer in made)
    if not db.is_sqlite:  # its planner knows how big the tables are, as autovacuum sees to
        async with db.engine.begin() as connection:  # (SQLite keeps no statistics unasked)
            await connection.execute(text("ANALYZE"))

    cohens_x1, levis_x2 = made[1], made[PER_BUSINESS + 2]
    assert isinstance(cohens_x1, Arrived) and isinstance(levis_x2, Arrived)
    with plans_of(db, "leads", "contacts") as plans:
        async with db.transaction(write=False) as session:
            earlier = await arrivals._earlier(
                session,
                [
                    (business.id, Arrival(ById(business.id), "web", NOW, external_id=external_id))
                    for business, external_id in [(cohen, "x1"), (levi, "x2"), (cohen, "nothing")]
                ],
            )
            book = await ContactBook.load(
                session,
                [
                    (cohen.id, normalise_phone(phones[1]), None),  # cohen's by phone
                    (levi.id, None, f"c{PER_BUSINESS + 2}@example.com"),  # levi's by e-mail
                    (levi.id, normalise_phone(phones[1]), None),  # cohen's phone, not levi's
                    (cohen.id, normalise_phone(phones[3]), "c3@example.com"),  # both ways
                ],
            )
    assert earlier == {
        ("external", cohen.id, "x1"): replace(cohens_x1, new_lead=False, duplicate=True),
        ("external", levi.id, "x2"): replace(levis_x2, new_lead=False, duplicate=True),
    }
    found = {
        (contact.business_id, contact.email)
        for contacts in book.known.values()
        for contact in contacts
    }
    assert {(cohen.id, "c1@example.com"), (levi.id, f"c{PER_BUSINESS + 2}@example.com")} <= found
    assert (cohen.id, "c3@example.com") in found
    assert len(book.known[cohen.id]) == len({c.id for c in book.known[cohen.id]})  # once each
    assert not any(
        contact.phone == normalise_phone(phones[1]) for contact in book.known.get(levi.id, [])
    )

    leads_plan, contacts_plan = plans
    if db.is_sqlite:
        assert (
            "SEARCH leads USING INDEX uq_leads_business_external (business_id=? AND external_id=?)"
            in leads_plan
        )
        assert "uq_contacts_business_phone (business_id=? AND phone=?)" in contacts_plan
        assert "uq_contacts_business_email (business_id=? AND email=?)" in contacts_plan
        assert "SCAN leads" not in leads_plan and "SCAN contacts" not in contacts_plan
    else:
        assert "Index Scan using uq_leads_business_external" in leads_plan
        assert "Index Scan using uq_contacts_business_phone" in contacts_plan
        assert "Index Scan using uq_contacts_business_email" in contacts_plan
        for plan in plans:  # nothing read beyond the probes
            assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
