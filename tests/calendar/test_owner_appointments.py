"""Appointments the owner controls (issue 24, point 5), one story over HTTP on both databases:
the owner books from his portal (a bad phone and a closed hour refused in place), moves the
meeting (a taken slot refused in place) and cancels another; the contact is told each time in
Hebrew written right ("ל־23 בנובמבר 2026, 10:00", no seconds), by e-mail through a real SMTP
server with the meeting as an .ics whose SEQUENCE follows the moves, and cancels from the
signed link in his message; what was queued about an old time is withdrawn, never sent."""

from __future__ import annotations

import email
import re
from collections.abc import AsyncIterator
from email.header import decode_header, make_header
from email.message import Message

import httpx
import pytest
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.notify import Senders, send_due_notifications
from models import Notification
from models.records import Appointment
from tests.calendar.test_appointments import MONDAY, PUBLIC, SUNDAY_9, booked, desk
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, sign_in
from tests.fakes import FakeSmtp

HTMX = {"HX-Request": "true"}
LINK = re.compile(re.escape(PUBLIC) + r"(/meeting/\S+)")


@pytest.fixture
async def web(db: Database, smtp: FakeSmtp) -> AsyncIterator[object]:
    settings = Settings(
        database_url=db.url, secret_key=SECRET, public_url=PUBLIC, smtp_url=smtp.url()
    )
    app = create_app(settings, db=db, clock=MovableClock(SUNDAY_9), run_jobs=False)
    async with app.router.lifespan_context(app):
        yield app


def client_of(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def notices(db: Database) -> dict[str, Notification]:
    async with db.transaction(write=False) as session:
        found = await session.scalars(
            select(Notification).where(Notification.idempotency_key.startswith("appointment:"))
        )
        return {n.idempotency_key.split(":", 1)[1]: n for n in found}


def calendar_part(mail: Message) -> Message:
    [part] = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    return part


async def test_the_owner_books_moves_and_cancels_and_the_contact_is_told(
    web: object, db: Database, smtp: FakeSmtp
) -> None:
    table = await desk(db, stage="new")  # דנה, 052-7654321, dana@example.test; Hebrew business
    business = table.business
    owner = client_of(web)
    await sign_in(owner, table.owner.email)
    token = await csrf_token(owner, "/portal/appointments")
    form = {"csrf_token": token, "business_id": str(business.id), "name": "דנה"}
    slot = {"day": MONDAY, "start": "10:00", "minutes": "30", "title": "בדיקת צנרת"}

    refused = await owner.post(
        "/portal/appointments", data=form | slot | {"phone": "12"}, headers=HTMX
    )
    assert refused.status_code == 422 and "<html" not in refused.text
    assert 'id="book-phone-error"' in refused.text and 'value="12"' in refused.text
    closed = await owner.post(
        "/portal/appointments", data=form | slot | {"phone": "052-7654321", "start": "03:00"}
    )
    assert closed.status_code == 422 and 'id="book-start-error"' in closed.text
    assert 'value="03:00"' in closed.text and "<html" in closed.text
    made = await owner.post("/portal/appointments", data=form | slot | {"phone": "052-7654321"})
    assert made.status_code == 303
    second = slot | {"start": "12:00", "title": "", "phone": "054-2345678", "name": "יוסי"}
    assert (await owner.post("/portal/appointments", data=form | second)).status_code == 303
    first, other = await booked(db, business)
    assert first.contact_id == table.lead.contact_id and first.lead_id is None  # the same card

    confirm = (await notices(db))[f"{first.id}:confirm"]
    assert confirm.channel == "email" and confirm.recipient == "dana@example.test"
    assert "נקבעה ל־23 בנובמבר 2026, 10:00." in confirm.body and "10:00:00" not in confirm.body
    assert confirm.attachment is not None and "SEQUENCE:0" in confirm.attachment["text"]
    assert "DTSTART:20261123T080000Z" in confirm.attachment["text"]
    link = LINK.search(confirm.body)
    assert link, confirm.body

    taken = await owner.post(
        f"/portal/appointments/{first.id}/move",
        data={"csrf_token": token, "day": MONDAY, "start": "12:00", "minutes": "30"},
        headers=HTMX,
    )
    assert taken.status_code == 409 and f'id="move-{first.id}-start-error"' in taken.text
    assert f'id="move-{first.id}"' in taken.text and 'value="12:00"' in taken.text
    moved = await owner.post(
        f"/portal/appointments/{first.id}/move",
        data={"csrf_token": token, "day": MONDAY, "start": "11:00", "minutes": "45"},
    )
    assert moved.status_code == 303
    sent = await notices(db)
    assert sent[f"{first.id}:confirm"].status == "withdrawn"  # the old time never goes out
    notice = sent[f"{first.id}:moved:1"]
    assert "הפגישה שלך ב" in notice.body and "ל־23 בנובמבר 2026, 11:00" in notice.body
    assert notice.attachment is not None
    assert "SEQUENCE:1" in notice.attachment["text"]
    assert "DTSTART:20261123T090000Z" in notice.attachment["text"]
    assert "DTEND:20261123T094500Z" in notice.attachment["text"]

    page = await owner.get("/portal/appointments")
    assert "23 בנובמבר 2026, 11:00" in page.text or "November 23, 2026, 11:00" in page.text
    cancelled = await owner.post(
        f"/portal/appointments/{other.id}/cancel", data={"csrf_token": token}
    )
    assert cancelled.status_code == 303
    assert (await notices(db))[f"{other.id}:cancelled"].status == "queued"

    # Everything queued goes out through the SMTP server: the .ics travels with the e-mail.
    senders = Senders(web.state.settings)  # type: ignore[attr-defined]
    await send_due_notifications(db, senders, now=SUNDAY_9)
    mails = [email.message_from_bytes(m.raw) for m in smtp.received]
    moves = [m for m in mails if "dana@example.test" in str(m["To"])]
    [mail] = [m for m in moves if "הועבר" in str(make_header(decode_header(m["Subject"])))]
    part = calendar_part(mail)
    assert part.get_param("method") == "PUBLISH" and part.get_filename() == "appointment.ics"
    assert "SEQUENCE:1" in part.get_payload(decode=True).decode()  # type: ignore[union-attr]

    # The contact cancels from his link: no session, once; a forged link is refused.
    contact = client_of(web)
    meeting = await contact.get(link.group(1))
    assert meeting.status_code == 200 and "23 בנובמבר 2026, 11:00" in meeting.text
    assert (await contact.post(link.group(1))).status_code == 303
    again = await contact.get(link.group(1))
    assert 'role="status"' in again.text and again.status_code == 200
    assert (await contact.get("/meeting/forged")).status_code == 400
    async with db.transaction(write=False) as session:
        gone = await session.get_one(Appointment, first.id)
    assert gone.cancelled_at is not None and gone.sequence == 2
    told = (await notices(db))[f"{first.id}:cancelled"]
    assert told.attachment is not None and "STATUS:CANCELLED" in told.attachment["text"]
    assert "בוטלה" in told.body and "/meeting/" not in told.body
    [owner_told] = [n for k, n in (await notices(db)).items() if "cancelled-by-contact" in k]
    assert owner_told.user_id == table.owner.id  # in his language: English
    assert "cancelled the appointment of November 23, 2026, 11:00" in owner_told.subject
    await owner.aclose()
    await contact.aclose()
