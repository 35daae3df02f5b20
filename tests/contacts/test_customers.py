"""Customer records: A/B/C from won deals, inactive contacts, importing customers, privacy."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, text

from console.base.db import Database
from console.base.errors import Invalid, NotFound, UnsupportedMedia
from console.contacts import contacts
from console.contacts.contact_import import (
    MAX_ROWS,
    guess_mapping,
    import_contacts,
    mapping_from_option,
    read_sheet,
)
from console.contacts.customer_classes import classes_by_revenue, classify_business, is_inactive
from console.contacts.privacy import anonymise_expired_leads, erase_contact, export_contact
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import calls
from models import (
    Appointment,
    AuditEvent,
    Base,
    Business,
    Comment,
    Contact,
    Interaction,
    InteractionRating,
    Lead,
    Notification,
    Survey,
    Task,
    User,
)
from tests.conftest import SECRET
from tests.factories import csrf_token, make_business, make_user, sign_in
from workers.customers import anonymise_leads, classify_customers
from workers.settings import PERIODIC

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def phone(n: int) -> str:
    return f"05276543{n:02d}"


async def count(db: Database, model: type[Any]) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def contact_with_deals(
    db: Database, business: Business, n: int, won: list[int], **extra: Any
) -> Contact:
    async with db.transaction() as session:
        contact = Contact(business_id=business.id, name=f"c{n}", phone="+9725276543" + f"{n:02d}")
        contact.created_at = NOW - 10 * DAY
        for name, value in extra.items():
            setattr(contact, name, value)
        session.add(contact)
        await session.flush()
        for value in won:
            session.add(
                Lead(
                    business_id=business.id,
                    contact_id=contact.id,
                    channel="phone",
                    stage="won",
                    deal_value=Decimal(value),
                    closed_at=NOW - DAY,
                )
            )
        return contact


# --------------------------------------------------------------------------- A / B / C


def test_the_rule_on_its_own() -> None:
    # Sorted by revenue; A while the revenue before is under 20% of the total, B under 50%.
    one, two, three = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
    classes = classes_by_revenue({one: Decimal(50), two: Decimal(30), three: Decimal(20)})
    assert classes == {one: "A", two: "C", three: "C"}
    assert classes_by_revenue({}) == {}


async def test_abc_classes_from_won_deals_on_a_hand_computed_fixture(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        other = await make_business(session)
    # Total 900: 20% = 180, 50% = 450. Before each: 0 A, 120 A, 230 B, 330 B, 425 B, 515 C…
    revenue = [[70, 50], [110], [100], [95], [90], [85], [80], [75], [70], [60], [15]]
    made = [await contact_with_deals(db, business, n, won) for n, won in enumerate(revenue)]
    # c1 is locked to C by a person: it stays C, and still counts in the others' places.
    async with db.transaction() as session:
        locked = await session.get_one(Contact, made[1].id)
        await contacts.update_contact(session, locked, {"abc_class": "C"})
        assert locked.abc_class_locked
        # Ignored: a lost deal, an open one with a value, another business's won deal.
        session.add_all(
            [
                Lead(
                    business_id=business.id,
                    contact_id=made[10].id,
                    channel="phone",
                    stage="lost",
                    deal_value=Decimal(10_000),
                ),
                Lead(
                    business_id=business.id,
                    contact_id=made[9].id,
                    channel="phone",
                    stage="quote",
                    deal_value=Decimal(10_000),
                ),
            ]
        )
        quiet = Contact(business_id=business.id, name="no deals", phone="+972527654399")
        session.add(quiet)
    await contact_with_deals(db, other, 50, [1_000_000])
    async with db.transaction() as session:
        assert await classify_business(session, business.id) == 10  # all but the locked one
    async with db.transaction(write=False) as session:
        found = {
            c.name: c.abc_class
            for c in await session.scalars(
                select(Contact).where(Contact.business_id == business.id)
            )
        }
    expected = ["A", "C", "B", "B", "B", "C", "C", "C", "C", "C", "C"]
    assert [found[f"c{n}"] for n in range(11)] == expected
    assert found["no deals"] is None
    # The job: every business, and a second run changes nothing.
    ctx = {"db": db}
    assert await classify_customers(ctx) == 1  # the other business's only customer: A
    assert await classify_customers(ctx) == 0
    assert any(job.function is classify_customers for job in PERIODIC)
    # "Automatic" on the card: the lock goes, the computed class comes at once.
    async with db.transaction() as session:
        card = await session.get_one(Contact, made[1].id)
        await contacts.update_contact(session, card, {"abc_class": ""})
    async with db.transaction(write=False) as session:
        card = await session.get_one(Contact, made[1].id)
        assert (card.abc_class, card.abc_class_locked) == ("A", False)


async def test_inactive_after_two_years_shown_and_filtered_never_deleted(
    client: httpx.AsyncClient, db: Database, app: Any
) -> None:
    app.state.clock.now = lambda: NOW
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        old = Contact(business_id=business.id, name="Ruth Oldtimer", phone="+972527654301")
        old.created_at = NOW - 1000 * DAY
        old.last_contact_at = NOW - 731 * DAY
        recent = Contact(business_id=business.id, name="Noa Recent", phone="+972527654302")
        recent.created_at = NOW - 1000 * DAY
        recent.last_contact_at = NOW - 700 * DAY
        session.add_all([old, recent])
    assert is_inactive(old, NOW) and not is_inactive(recent, NOW)
    await sign_in(client, secretary.email)
    listed = await client.get("/contacts", params={"inactive": "1"}, headers={"HX-Request": "true"})
    assert "Ruth Oldtimer" in listed.text and "Noa Recent" not in listed.text
    card = await client.get(f"/contacts/{old.id}")
    assert "Inactive" in card.text or "לא פעיל" in card.text
    assert await count(db, Contact) == 2


# --------------------------------------------------------------------------- import

HEADERS = 'שם,טלפון,דוא"ל,חברה,הערות,class'
ROWS = [
    f"דנה,{phone(1)},dana@example.test,,לקוחה ותיקה,",  # 2: new
    "בועז,12,,,,",  # 3: not a phone
    "אין פרטים,,,,,",  # 4: no phone, no e-mail
    "דנה שוב,+972-52-765-4301,,סטודיו דנה,,",  # 5: row 2 again (another way to write it)
    f"משה,{phone(2)},,כהן בע״מ,,",  # 6: a contact of the business already
    f"רון,{phone(3)},,,,Z",  # 7: no such class
    f"גלית,{phone(4)},GALIT@Example.test,,,a",  # 8: new, class A (a person's choice: locked)
]


def csv_bytes(rows: list[str] = ROWS) -> bytes:
    return ("\n".join([HEADERS, *rows]) + "\n").encode()


async def known_contact(db: Database, business: Business) -> Contact:
    async with db.transaction() as session:
        contact = Contact(business_id=business.id, name="משה", phone=f"+9725276543{2:02d}")
        session.add(contact)
    return contact


async def test_import_skips_or_merges_duplicates_and_reports_rejected_rows(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    await known_contact(db, business)
    sheet = read_sheet("customers.csv", csv_bytes())
    mapping = guess_mapping(sheet.headers)
    assert mapping == {
        "name": 0,
        "phone": 1,
        "email": 2,
        "company": 3,
        "notes": 4,
        "abc_class": 5,
    }
    async with db.transaction() as session:
        report = await import_contacts(session, business, sheet, mapping, merge=False)
    assert (report.created, report.merged) == (2, 0)
    assert [n for n, _ in report.skipped] == [5, 6]
    assert [n for n, _ in report.rejected] == [3, 4, 7]
    assert "row 2" in dict(report.skipped)[5]
    assert report.as_csv().startswith(b"\xef\xbb\xbfrow,status,reason\r\n")  # Excel's BOM
    lines = report.text().splitlines()
    assert lines[0] == "row,status,reason"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        ["3", "rejected"],
        ["4", "rejected"],
        ["5", "skipped"],
        ["6", "skipped"],
        ["7", "rejected"],
    ]
    async with db.transaction(write=False) as session:
        found = {c.phone: c for c in await session.scalars(select(Contact))}
    assert len(found) == 3
    assert found["+972527654301"].email == "dana@example.test"
    assert found["+972527654301"].company == ""  # skipped, not merged
    assert found["+972527654302"].company == ""
    galit = found["+972527654304"]
    assert (galit.email, galit.abc_class, galit.abc_class_locked) == (
        "galit@example.test",
        "A",
        True,
    )


async def test_import_merge_fills_missing_fields_only(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    moshe = await known_contact(db, business)
    sheet = read_sheet("customers.csv", csv_bytes())
    async with db.transaction() as session:
        report = await import_contacts(
            session, business, sheet, guess_mapping(sheet.headers), merge=True
        )
    assert (report.created, report.merged, report.skipped) == (2, 2, [])
    async with db.transaction(write=False) as session:
        found = {c.phone: c for c in await session.scalars(select(Contact))}
    dana = found["+972527654301"]
    assert (dana.name, dana.company) == ("דנה", "סטודיו דנה")  # name kept, company filled
    assert found[moshe.phone or ""].company == "כהן בע״מ"
    assert found[moshe.phone or ""].id == moshe.id


async def test_import_is_all_or_nothing(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    sheet = read_sheet("customers.csv", csv_bytes())

    def crash(done: int, total: int) -> None:
        if done == 6:
            raise RuntimeError("the connection dropped")

    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await import_contacts(
                session, business, sheet, guess_mapping(sheet.headers), merge=True, progress=crash
            )
    assert await count(db, Contact) == 0


async def test_xlsx_with_english_headers_and_numbers_for_phones(db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Name", "Phone", "E-mail", "Company", "Address"])
    sheet.append(["Dana", 527654301, "dana@example.test", "Studio", "Tel Aviv"])
    sheet.append([None, None, None, None, None])
    sheet.append(["Bad", "nope", None, None, None])
    out = io.BytesIO()
    book.save(out)
    table = read_sheet("Customers.XLSX", out.getvalue())
    assert table.headers[:2] == ["Name", "Phone"] and len(table.rows) == 2
    mapping = guess_mapping(table.headers)
    assert mapping == {"name": 0, "phone": 1, "email": 2, "company": 3, "address": 4}
    async with db.transaction() as session:
        report = await import_contacts(session, business, table, mapping, merge=False)
    assert report.created == 1 and [n for n, _ in report.rejected] == [3]
    async with db.transaction(write=False) as session:
        dana = await session.scalar(select(Contact))
    assert dana is not None and (dana.phone, dana.address) == ("+972527654301", "Tel Aviv")


def test_wrong_files_and_too_many_rows_are_refused() -> None:
    for name, content in [
        ("customers.pdf", b"%PDF-1.4"),
        ("customers.csv", b"\x00\x01binary\x00"),
        ("customers.xlsx", b"PK\x03\x04 not really a workbook"),
        ("customers.xlsx", b"name,phone\n"),
    ]:
        with pytest.raises(UnsupportedMedia) as refused:
            read_sheet(name, content)
        assert refused.value.status == 415
    rows = [f"n{i},{phone(1)}" for i in range(MAX_ROWS + 1)]  # 10,000 rows
    with pytest.raises(Invalid) as too_many:
        read_sheet("big.csv", ("name,phone\n" + "\n".join(rows)).encode())
    assert too_many.value.status == 422 and "10000 rows" in too_many.value.message
    assert len(read_sheet("ok.csv", ("name,phone\n" + "\n".join(rows[1:])).encode()).rows) == 9999
    with pytest.raises(Invalid):
        read_sheet("empty.csv", b"\n\n")
    with pytest.raises(Invalid):
        mapping_from_option("name=שם", ["שם", "טלפון"])  # neither phone nor e-mail mapped


async def test_import_over_http_upload_preview_import_and_report(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        elsewhere = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
    await known_contact(db, business)
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/contacts/import")
    upload = await client.post(
        "/contacts/import",
        data={"csrf_token": token, "business_id": str(business.id)},
        files={"file": ("customers.csv", csv_bytes(), "text/csv")},
    )
    assert upload.status_code == 200, upload.text
    assert "+972527654301" in upload.text and 'name="payload"' in upload.text
    payload = upload.text.split('name="payload" value="')[1].split('"')[0]
    fields = {
        "csrf_token": token,
        "business_id": str(business.id),
        "filename": "customers.csv",
        "payload": payload,
        "map_name": "0",
        "map_phone": "1",
        "map_email": "2",
        "map_company": "3",
        "duplicates": "skip",
    }
    assert await count(db, Contact) == 1  # the preview writes nothing
    done = await client.post("/contacts/import", data={**fields, "step": "import"})
    assert done.status_code == 200
    assert await count(db, Contact) == 4  # rows 2, 7 (no class mapped), 8, and Moshe
    report = done.text.split('name="report" value="')[1].split('"')[0]
    csv_file = await client.post(
        "/contacts/import/report.csv", data={"csrf_token": token, "report": report}
    )
    assert csv_file.headers["content-type"].startswith("text/csv")
    assert csv_file.content.startswith(b"\xef\xbb\xbfrow,status,reason\r\n")
    assert "attachment" in csv_file.headers["content-disposition"]
    assert [line.split(",")[0] for line in csv_file.text.splitlines()[1:]] == ["3", "4", "5", "6"]
    # Refused, with nothing written: a file that is not CSV/XLSX, too many rows, a business
    # she does not serve, and an owner (the import is the agency's).
    wrong = await client.post(
        "/contacts/import",
        data={"csrf_token": token, "business_id": str(business.id)},
        files={"file": ("customers.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert wrong.status_code == 415
    big = "name,phone\n" + "\n".join(f"n{i},{phone(9)}" for i in range(10_000))
    refused = await client.post(
        "/contacts/import",
        data={"csrf_token": token, "business_id": str(business.id)},
        files={"file": ("big.csv", big.encode(), "text/csv")},
    )
    assert refused.status_code == 422
    foreign = await client.post(
        "/contacts/import",
        data={"csrf_token": token, "business_id": str(elsewhere.id)},
        files={"file": ("customers.csv", csv_bytes(), "text/csv")},
    )
    assert foreign.status_code == 404
    assert await count(db, Contact) == 4
    await client.post("/logout", data={"csrf_token": token})
    await sign_in(client, owner.email)
    assert (await client.get("/contacts/import")).status_code == 404


def mazkira(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


async def test_import_contacts_command(db: Database, tmp_path: Path) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
    await known_contact(db, business)
    file = tmp_path / "customers.csv"
    file.write_bytes(csv_bytes())
    env = {**os.environ, "DATABASE_URL": db.url, "SECRET_KEY": SECRET}
    env.pop("REDIS_URL", None)
    command = ["import-contacts", "--business", business.slug, str(file)]
    mapping = ["--mapping", "name=שם,phone=טלפון,email=2", "--merge"]
    ran = await asyncio.to_thread(mazkira, env, *command, *mapping)
    assert ran.returncode == 0, ran.stderr
    assert "created: 3, merged: 2, skipped: 0, rejected: 2" in ran.stdout  # row 7: no class column
    assert "3,rejected," in ran.stdout and "4,rejected," in ran.stdout
    assert "[" + "#" * 30 + "] 7/7" in ran.stderr
    assert await count(db, Contact) == 4
    missing = await asyncio.to_thread(mazkira, env, *command[:3], str(tmp_path / "none.csv"))
    assert missing.returncode == 2
    # Audited as the web import is: who and where are the command line.
    async with db.transaction(write=False) as session:
        [audit] = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "contacts.imported")
            )
        )
    assert (audit.actor_id, audit.actor_email, audit.address) == (None, "cli", "cli")
    assert audit.business_id == business.id
    assert audit.details == {
        "file": "customers.csv",
        "created": 3,
        "merged": 2,
        "skipped": 0,
        "rejected": 2,
    }


# --------------------------------------------------------------------------- privacy

NAME, PHONE, EMAIL = "דנה פרטית", "0527654377", "dana.private@example.test"
E164 = "+972527654377"


async def person_with_history(db: Database) -> tuple[Business, User, User, Contact, Contact]:
    """A contact with a lead, a call log, a task, an appointment, a survey, a rating, a comment
    and messages: each naming her; and another contact of the business, who must stay."""
    async with db.transaction() as session:
        business = await make_business(session)
        secretary = await make_user(session, "secretary", business)
        owner = await make_user(session, "owner", business)
        lead = await arrivals.create_lead(
            session,
            secretary,
            NewLead(
                business_id=str(business.id),
                phone=PHONE,
                email=EMAIL,
                name=NAME,
                subject=f"{NAME} asks for a quote",
                message=f"Call {NAME} on {PHONE} or {EMAIL}",
            ),
            now=NOW,
        )
        contact = await session.get_one(Contact, lead.contact_id)
        await contacts.update_contact(
            session,
            contact,
            {"company": "סטודיו פרטי", "address": "רחוב 1", "notes": NAME, "tags": NAME},
        )
        note = await calls.add_note(session, secretary, lead.id, text=f"{NAME} {PHONE}", now=NOW)
        note.summary, note.answers = NAME, {"q1": EMAIL}
        session.add_all(
            [
                Task(
                    business_id=business.id,
                    lead_id=lead.id,
                    assignee_id=owner.id,
                    title=f"Call {NAME}",
                    details=PHONE,
                    due_at=NOW + DAY,
                ),
                Appointment(
                    business_id=business.id,
                    lead_id=lead.id,
                    contact_id=contact.id,
                    starts_at=NOW + DAY,
                    ends_at=NOW + DAY + timedelta(hours=1),
                    title=f"Meeting {NAME}",
                    location="רחוב 1",
                    notes=PHONE,
                ),
                Survey(
                    business_id=business.id,
                    lead_id=lead.id,
                    contact_id=contact.id,
                    stars=5,
                    improve=f"{NAME} says faster",
                ),
                InteractionRating(
                    business_id=business.id,
                    interaction_id=note.id,
                    rated_by_id=owner.id,
                    stars=4,
                    comment=f"good with {NAME}",
                ),
                Comment(business_id=business.id, lead_id=lead.id, body=f"{NAME} again"),
                Notification(
                    idempotency_key="to-her",
                    business_id=business.id,
                    channel="sms",
                    recipient=E164,
                    body=f"Hello {NAME}",
                ),
                Notification(
                    idempotency_key="about-her",
                    business_id=business.id,
                    user_id=owner.id,
                    channel="email",
                    recipient=owner.email,
                    subject=f"New lead: {NAME}",
                    body=f"{PHONE}",
                ),
            ]
        )
        other = await arrivals.create_lead(
            session,
            secretary,
            NewLead(business_id=str(business.id), phone="0527654388", name="משה נשאר"),
            now=NOW,
        )
        stays = await session.get_one(Contact, other.contact_id)
    return business, secretary, owner, contact, stays


async def database_text(db: Database) -> str:
    """Every value of every table, as text."""
    parts: list[str] = []
    async with db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in await connection.execute(text(f'SELECT * FROM "{table.name}"')):  # noqa: S608
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


async def test_erase_leaves_no_personal_data_behind(db: Database) -> None:
    _business, secretary, _owner, contact, stays = await person_with_history(db)
    before = await database_text(db)
    for trace in (NAME, "527654377", EMAIL):
        assert trace in before
    async with db.transaction() as session:
        await erase_contact(session, secretary, str(contact.id), now=NOW, address="10.0.0.1")
    after = await database_text(db)
    for trace in (NAME, "527654377", EMAIL, "סטודיו פרטי"):
        assert trace not in after, trace
    assert "משה נשאר" in after  # the other contact is untouched
    async with db.transaction(write=False) as session:
        erased = await session.get_one(Contact, contact.id)
        assert erased.erased_at == NOW and erased.phone is None and erased.tags == []
        assert await session.scalar(select(func.count()).select_from(Lead)) == 2  # rows stay
        kept = await session.get_one(Contact, stays.id)
        assert kept.name == "משה נשאר" and kept.erased_at is None
        [audit] = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "contact.erased"))
        ).all()
        assert (audit.actor_id, audit.subject_id, audit.address) == (
            secretary.id,
            str(contact.id),
            "10.0.0.1",
        )


async def test_export_holds_everything_about_the_contact(db: Database) -> None:
    _business, secretary, _owner, contact, _stays = await person_with_history(db)
    async with db.transaction() as session:
        document = await export_contact(session, secretary, str(contact.id), now=NOW)
    dumped = json.dumps(document, ensure_ascii=False)
    assert document["contact"]["phone"] == E164 and document["contact"]["email"] == EMAIL
    assert document["contact"]["name"] == NAME
    for part in ("leads", "interactions", "tasks", "appointments", "surveys", "ratings"):
        assert len(document[part]) == 1, part
    assert "משה נשאר" not in dumped  # nobody else's data
    assert f"Call {NAME} on {PHONE}" in document["leads"][0]["message"]
    async with db.transaction(write=False) as session:
        actions = list(await session.scalars(select(AuditEvent.action)))
    assert actions == ["contact.exported"]


async def test_privacy_over_http_and_another_business_is_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    business, secretary, owner, contact, _stays = await person_with_history(db)
    async with db.transaction() as session:
        elsewhere = await make_business(session)
        stranger = await make_user(session, "secretary", elsewhere)
    await sign_in(client, stranger.email)
    token = await csrf_token(client, "/contacts")
    for action in ("export", "erase"):
        refused = await client.post(
            f"/contacts/{contact.id}/{action}", data={"csrf_token": token, "confirm": "erase"}
        )
        assert refused.status_code == 404, action
    async with db.transaction(write=False) as session:
        untouched = await session.get_one(Contact, contact.id)
        assert (untouched.name, untouched.erased_at) == (NAME, None)
        audited = await session.scalars(select(AuditEvent.action))
        assert not [a for a in audited if a.startswith("contact.")]
    await client.post("/logout", data={"csrf_token": token})

    await sign_in(client, secretary.email)
    token = await csrf_token(client, f"/contacts/{contact.id}")
    exported = await client.post(f"/contacts/{contact.id}/export", data={"csrf_token": token})
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert exported.json()["contact"]["email"] == EMAIL
    unconfirmed = await client.post(f"/contacts/{contact.id}/erase", data={"csrf_token": token})
    assert unconfirmed.status_code == 422
    erased = await client.post(
        f"/contacts/{contact.id}/erase", data={"csrf_token": token, "confirm": "erase"}
    )
    assert erased.status_code == 303
    card = await client.get(f"/contacts/{contact.id}")
    assert NAME not in card.text and EMAIL not in card.text
    async with db.transaction(write=False) as session:
        actions = sorted(await session.scalars(select(AuditEvent.action)))
    assert [a for a in actions if a.startswith("contact.")] == [
        "contact.erased",
        "contact.exported",
    ]
    assert business and owner


async def test_retention_job_anonymises_only_leads_closed_longer_than_the_period(
    db: Database,
) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        keeps = await make_business(session)  # no retention period: kept
        business.retention_days = 30
        secretary = await make_user(session, "secretary", business, keeps)

        async def lead(at: Business, closed_days_ago: int | None, stage: str = "won") -> Lead:
            made = await arrivals.create_lead(
                session,
                secretary,
                NewLead(
                    business_id=str(at.id),
                    phone=phone(10 + closed_days_ago if closed_days_ago else 60),
                    subject="secret subject",
                    message="secret message",
                ),
                now=NOW - 500 * DAY,
            )
            await calls.add_note(session, secretary, made.id, text="secret note", now=NOW)
            if closed_days_ago is not None:
                made.stage, made.closed_at = stage, NOW - closed_days_ago * DAY
            return made

        old = await lead(business, 40)
        lost = await lead(business, 31, "lost")
        recent = await lead(business, 10)
        still_open = await lead(business, None)
        other = await lead(keeps, 45)
    ctx: dict[str, Any] = {"db": db}
    async with db.transaction() as session:
        assert await anonymise_expired_leads(session, now=NOW) == 2
    async with db.transaction() as session:
        assert await anonymise_expired_leads(session, now=NOW) == 0  # idempotent
    async with db.transaction(write=False) as session:
        for row, wiped in [(old, True), (lost, True), (recent, False), (still_open, False)]:
            found = await session.get_one(Lead, row.id)
            assert (found.message == "", found.anonymised_at == (NOW if wiped else None)) == (
                wiped,
                True,
            )
            notes = await session.scalar(
                select(Interaction.notes).where(Interaction.lead_id == row.id)
            )
            assert (notes == "") == wiped
        assert (await session.get_one(Lead, other.id)).message == "secret message"
    # The job runs on the real clock: by now the recent one is past its 30 days too.
    assert await anonymise_leads(ctx) == 1
    assert await anonymise_leads(ctx) == 0
    assert any(job.function is anonymise_leads for job in PERIODIC)


async def test_retention_is_set_by_the_admin_only(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", business)
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/contacts/settings")
    url = f"/contacts/settings/{business.id}/retention"
    assert (
        await client.post(url, data={"csrf_token": token, "retention_days": "9"})
    ).status_code == 404
    await client.post("/logout", data={"csrf_token": token})
    await sign_in(client, admin.email)
    token = await csrf_token(client, "/contacts/settings")
    bad = await client.post(url, data={"csrf_token": token, "retention_days": "-3"})
    assert bad.status_code == 422
    saved = await client.post(url, data={"csrf_token": token, "retention_days": "365"})
    assert saved.status_code == 303
    again = await client.post(
        "/contacts/classify", data={"csrf_token": token, "business_id": str(business.id)}
    )
    assert again.status_code == 303
    async with db.transaction(write=False) as session:
        assert (await session.get_one(Business, business.id)).retention_days == 365
    with pytest.raises(NotFound):
        async with db.transaction() as session:
            await erase_contact(session, secretary, "not-an-id", now=NOW)


async def test_the_admin_sets_the_retention_on_the_business_s_page_too(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, name="Alpha")
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary", business)
    url = f"/agency/businesses/{business.id}"
    form = {"name": "Alpha", "timezone": "Asia/Jerusalem", "locale": "he"}
    await sign_in(client, secretary.email)
    token = await csrf_token(client, "/inbox")
    refused = await client.post(url, data={"csrf_token": token, **form, "retention_days": "9"})
    assert refused.status_code == 404
    await client.post("/logout", data={"csrf_token": token})

    await sign_in(client, admin.email)
    page = await client.get(url)
    assert 'name="retention_days"' in page.text
    token = await csrf_token(client, url)
    for bad in ("-3", "0", "36501", "a year"):
        answer = await client.post(
            url, data={"csrf_token": token, **form, "name": "Renamed", "retention_days": bad}
        )
        assert answer.status_code == 422, bad  # the same check as the settings page
    saved = await client.post(url, data={"csrf_token": token, **form, "retention_days": "400"})
    assert saved.status_code == 303
    kept = await client.post(url, data={"csrf_token": token, **form})  # the field left out
    assert kept.status_code == 303
    async with db.transaction(write=False) as session:
        found = await session.get_one(Business, business.id, populate_existing=True)
        audits = list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.business_id == business.id)
                .order_by(AuditEvent.id)
            )
        )
    assert (found.name, found.retention_days) == ("Alpha", 400)  # nothing of the refused posts
    retention = [a for a in audits if a.action == "business.retention"]
    assert [(a.actor_id, a.details) for a in retention] == [(admin.id, {"days": 400})]
    assert retention[0].address  # from where
    updated = [a.details["changed"] for a in audits if a.action == "business.updated"]
    assert updated == [["retention_days"], []]
