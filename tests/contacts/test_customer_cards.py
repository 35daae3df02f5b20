"""Issue 24, point 11: customer cards that fill themselves, told as one story over HTTP on both
databases. Customers are imported with birthdays (31/02 rejects its row, reported by number,
the report a CSV with Excel's byte-order mark); a web form's lead makes a card whose "customer
since" is the lead's day; winning the lead adds its deal to the lifetime value (un-winning takes
it away again); a class A customer shows its next follow-up on the card and, once due, in the
task list; a birthday becomes one reminder task, on its morning, once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.tasks import reminders
from models import Contact, Lead, Task
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_business, make_user, sign_in

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)  # Sunday 1 March 2026, 10:00 in Jerusalem
CSV_FILE = (
    "שם,טלפון,יום הולדת\r\n"
    "רות לוי,054-2345601,14/3/1985\r\n"
    "דוד כהן,054-2345602,31/02/1990\r\n"  # no such day: rejected, row 3
    "מאיה פרץ,054-2345603,1990-03-02\r\n"  # tomorrow is her birthday
).encode()


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def web(db: Database, clock: MovableClock) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=db.url, secret_key=SECRET)
    app = create_app(settings, db=db, clock=clock, run_jobs=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def contact_named(db: Database, name: str) -> Contact:
    async with db.transaction(write=False) as session:
        found = await session.scalar(select(Contact).where(Contact.name == name))
    assert found is not None, name
    return found


async def test_a_customer_card_fills_itself(
    web: httpx.AsyncClient, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="cards", name="אינסטלציה כהן")
        secretary = await make_user(session, "secretary", business, locale="he")
    await sign_in(web, secretary.email)
    token = await csrf_token(web, "/contacts/import")

    # Import: the birthday column is found by its Hebrew header; 31/02 is refused by row.
    upload = await web.post(
        "/contacts/import",
        data={"csrf_token": token, "business_id": str(business.id)},
        files={"file": ("customers.csv", CSV_FILE, "text/csv")},
    )
    assert upload.status_code == 200, upload.text
    payload = upload.text.split('name="payload" value="')[1].split('"')[0]
    assert re.search(r'name="map_birthday".*?<option value="2" dir="auto" selected', upload.text)
    done = await web.post(
        "/contacts/import",
        data={
            "csrf_token": token,
            "business_id": str(business.id),
            "filename": "customers.csv",
            "payload": payload,
            "map_name": "0",
            "map_phone": "1",
            "map_birthday": "2",
            "duplicates": "skip",
            "step": "import",
        },
    )
    assert done.status_code == 200
    assert "31/02/1990 אינו יום בלוח השנה" in done.text
    report = done.text.split('name="report" value="')[1].split('"')[0]
    report_file = await web.post(
        "/contacts/import/report.csv", data={"csrf_token": token, "report": report}
    )
    assert report_file.content.startswith(b"\xef\xbb\xbfrow,status,reason\r\n3,rejected,")
    ruth = await contact_named(db, "רות לוי")
    assert ruth.birthday == date(1985, 3, 14)

    # A web form's lead: the card's "customer since" is the lead's day in Jerusalem.
    clock.moment = datetime(2026, 2, 27, 23, 30, tzinfo=UTC)  # 28.2.26, 01:30 in Jerusalem
    form = await web.post(
        "/intake/cards/form",
        headers={"X-Intake-Key": business.intake_key},
        json={"name": "נועה", "phone": "052-7654321", "message": "דוד מים"},
    )
    assert form.status_code == 201, form.text
    clock.moment = NOW
    lead_id = form.json()["lead_id"]
    noa = await contact_named(db, "נועה")
    assert noa.customer_since == date(2026, 2, 28)

    # Earlier purchases typed on the card, a deal won: the lifetime value is their sum.
    card_url = f"/contacts/{noa.id}"
    token = await csrf_token(web, card_url)
    saved = await web.post(
        card_url,
        data={"csrf_token": token, "name": "נועה", "earlier_value": "1,000", "abc_class": "A"},
    )
    assert saved.status_code == 303
    stage_url = f"/leads/{lead_id}/stage"
    token = await csrf_token(web, f"/leads/{lead_id}")
    won = await web.post(
        stage_url, data={"csrf_token": token, "stage": "won", "deal_value": "1500"}
    )
    assert won.status_code == 303
    card = await web.get(card_url)
    assert "₪2,500.00" in card.text and "28.2.26" in card.text  # lifetime value, since
    # Class A: followed up 14 days after the last contact (the lead), shown on the card.
    assert "המעקב הבא" in card.text and "14.3.26" in card.text and "כל 14 ימים" in card.text
    await web.post(stage_url, data={"csrf_token": token, "stage": "meeting"})  # not won after all
    assert (await contact_named(db, "נועה")).lifetime_value == Decimal("1000.00")

    # A birthday that no calendar has is refused beside its field, what was typed kept.
    refused = await web.post(
        card_url,
        data={"csrf_token": token, "name": "נועה", "birthday": "31/02/1990"},
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422
    assert 'value="31/02/1990"' in refused.text and 'aria-invalid="true"' in refused.text

    # Two weeks on: the follow-up is due and the task list says so, beside the tasks.
    clock.moment = datetime(2026, 3, 15, 8, 0, tzinfo=UTC)
    await sign_in(web, secretary.email)  # a new day's session
    tasks = await web.get("/tasks")
    assert "מעקב אחר לקוחות" in tasks.text and f'href="/contacts/{noa.id}"' in tasks.text
    assert "הגיע הזמן" in tasks.text

    # Maya's birthday (2 March): one task at 9:00 on the day in Jerusalem, however often the
    # sweep runs; Ruth's (14 March) not yet.
    async def sweep(at: datetime) -> int:
        async with db.transaction() as session:
            return (await reminders.remind_followups(session, now=at)).written

    await sweep(NOW)  # 1 March: nothing of Maya yet
    morning = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 9:00 in Jerusalem
    assert await sweep(morning - timedelta(minutes=1)) == 0
    assert await sweep(morning) == 1
    assert await sweep(morning + timedelta(hours=3)) == 0
    async with db.transaction(write=False) as session:
        titles = list(await session.scalars(select(Task.title).where(Task.title.contains("יום"))))
        maya = await session.scalar(select(Contact).where(Contact.name == "מאיה פרץ"))
        leads = list(await session.scalars(select(Lead)))
    assert titles == ["יום הולדת: מאיה פרץ (2.3.26)"]
    assert maya is not None and maya.followup_at == datetime(2027, 3, 2, 7, 0, tzinfo=UTC)
    assert len(leads) == 1
