"""Text cannot lie about itself. A caller whose name is U+202E and digits (shown right to left it
reads as another phone number) comes through the web form and WhatsApp: the lead's heading, its
row, the greeting, the task page and the hand-off sent to the owner show the name without the
bidirectional controls (U+202A–202E, U+2066–2069), each in its own `<bdi>`; the plain-text
messages carry none. An e-mail with an invisible character or a look-alike letter in its local
part is refused, and the same address written with a full-width or invisible-padded domain is
one contact."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from console.base.config import Settings
from console.base.db import Database
from console.calendar.ics import ics_text
from console.channels.lines import add_line
from console.leads import scripts
from models import Contact, Notification
from tests.conftest import SECRET
from tests.factories import csrf_token, make_agency, sign_in
from tests.fakes import meta_text_message_payload, signed_meta_body

META_SECRET = "meta-app-secret-for-direction"
WHATSAPP_LINE = "106540352242922"
# Shown right to left, "\u202e7654321-250" reads 052-1234567.
LIAR = "\u202e7654321-250"
CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, secret_key=SECRET, whatsapp_app_secret=META_SECRET)


async def test_a_name_made_of_an_override_and_digits_shows_as_itself(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session, a={"slug": "cohen"})
        a, secretary, owner = agency.a, agency.secretary, agency.owner_a
        await add_line(session, a, "whatsapp", WHATSAPP_LINE)
        await scripts.save_draft(
            session, secretary, a, scripts.ScriptDraft(greeting="שלום {contact}, כאן {business}")
        )
        await scripts.publish_draft(session, a, now=datetime.now(UTC))
    form = {"name": LIAR, "phone": "054-2345678", "message": f"הודעה {LIAR}"}
    arrived = await client.post(
        "/intake/cohen/form", json=form, headers={"X-Intake-Key": a.intake_key}
    )
    assert arrived.status_code == 201
    whatsapp = meta_text_message_payload(
        from_wa_id="972527654321",
        body=f"\u2067{LIAR}\u2069",
        profile_name=LIAR,
        phone_number_id=WHATSAPP_LINE,
    )
    signed = signed_meta_body(META_SECRET, whatsapp)
    assert (
        await client.post("/intake/whatsapp", content=signed.body, headers=signed.headers)
    ).status_code == 200
    lead_url = f"/leads/{arrived.json()['lead_id']}"

    await sign_in(client, secretary.email)
    shown = LIAR.lstrip("\u202e")
    contact_url = f"/contacts/{arrived.json()['contact_id']}"
    for path in ("/inbox", lead_url, contact_url):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert not CONTROLS.search(answer.text), path
        assert f"<bdi>{shown}</bdi>" in answer.text, path
    page = (await client.get(lead_url)).text
    assert f"<h1><bdi>{shown}</bdi>" in page  # the heading
    assert f"שלום <bdi>{shown}</bdi>, כאן <bdi>{a.name}</bdi>" in page  # the greeting
    token = await csrf_token(client, "/inbox")
    handed = await client.post(
        f"{lead_url}/tasks",
        data={
            "csrf_token": token,
            "assignee_id": str(owner.id),
            "title": f"להתקשר אל {LIAR}",
            "due": "2099-01-01T10:00",
            "priority": "high",
        },
    )
    assert handed.status_code == 303, handed.text
    tasks = (await client.get("/tasks")).text
    assert not CONTROLS.search(tasks) and f"<bdi>להתקשר אל {shown}</bdi>" in tasks
    async with db.transaction(write=False) as session:
        sent = (await session.scalars(select(Notification))).all()
    assert sent, "the owner is told of the hand-off"
    for message in sent:
        assert not CONTROLS.search(message.subject + message.body), message.body
    assert any(shown in message.subject + message.body for message in sent)


async def test_one_address_is_one_contact(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session, a={"slug": "cohen"})
    headers = {"X-Intake-Key": agency.a.intake_key}

    async def post(email: str) -> httpx.Response:
        return await client.post("/intake/cohen/form", json={"email": email}, headers=headers)

    for refused in ("d\u200bana@example.com", "d\u0430na@example.com", "dana\u00ad@example.com"):
        answer = await post(refused)
        assert answer.status_code == 422 and answer.json()["field"] == "email", refused
    for same in ("Dana@Example.com", "dana@ＥＸＡＭＰＬＥ.com", "dana@exa\u200bmple.com"):
        assert (await post(same)).status_code == 201, same
    hebrew = await post("dana@בדיקה.co.il")
    assert hebrew.status_code == 201
    async with db.transaction(write=False) as session:
        emails = (await session.scalars(select(Contact.email).order_by(Contact.email))).all()
        assert await session.scalar(select(func.count()).select_from(Contact)) == 2
    assert emails == ["dana@example.com", "dana@xn--5dbedt4e.co.il"]


def test_the_calendar_feed_is_plain_text_without_bidirectional_controls() -> None:
    assert ics_text(f"פגישה עם {LIAR}, בבית") == "פגישה עם 7654321-250\\, בבית"
