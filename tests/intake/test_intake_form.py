"""The business's web form: verified by its intake key, written exactly once, nothing on refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from console.base.db import Database
from models import Contact, Lead
from tests.factories import make_business, make_user, sign_in


async def counts(db: Database) -> tuple[int, int]:
    async with db.transaction(write=False) as session:
        leads = await session.scalar(select(func.count()).select_from(Lead))
        contacts = await session.scalar(select(func.count()).select_from(Contact))
    return int(leads or 0), int(contacts or 0)


async def test_a_form_becomes_a_lead_once_however_often_it_is_sent(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="cohen")
    url, key = "/intake/cohen/form", {"X-Intake-Key": business.intake_key}
    first = await client.post(
        url,
        headers=key,
        json={
            "name": "דנה <script>alert(1)</script>",
            "phone": "054-2345678",
            "message": "נזילה במטבח",
            "source": "site",
            "external_id": "form-1",
        },
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["duplicate"] is False and len(body["lead_id"]) == 36
    again = await client.post(
        url, headers=key, json={"phone": "0542345678", "external_id": "form-1"}
    )
    assert again.status_code == 200 and again.json() == {**body, "duplicate": True}
    # The same delivery five times at once: one lead, every answer 2xx.
    answers = await asyncio.gather(
        *(
            client.post(url, headers=key, data={"phone": "052-7654321", "external_id": "form-2"})
            for _ in range(5)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["lead_id"] for a in answers}) == 1
    # The caller who writes again without an id is the same contact, with a second lead.
    repeat = await client.post(url, headers=key, json={"phone": "+972 54 234 5678"})
    assert repeat.status_code == 201 and repeat.json()["contact_id"] == body["contact_id"]
    assert await counts(db) == (3, 2)
    async with db.transaction(write=False) as session:
        lead = await session.get_one(Lead, __import__("uuid").UUID(body["lead_id"]))
        contact = await session.get_one(Contact, lead.contact_id)
    assert lead.channel == "web" and lead.external_id == "form-1" and lead.respond_by is not None
    assert contact.name == "דנה <script>alert(1)</script>"  # kept as typed, escaped when shown


async def test_every_refusal_is_clear_and_writes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        business = await make_business(session, slug="levi")
        await make_business(session, slug="other")
    url, key = "/intake/levi/form", {"X-Intake-Key": business.intake_key}
    cases: list[tuple[str, dict[str, str], dict[str, Any], int]] = [
        ("/intake/levi/form", {}, {"json": {"phone": "054-2345678"}}, 401),
        ("/intake/levi/form", {"X-Intake-Key": "wrong"}, {"json": {"phone": "054-2345678"}}, 401),
        ("/intake/other/form", key, {"json": {"phone": "054-2345678"}}, 401),  # not its key
        ("/intake/nobody/form", key, {"json": {"phone": "054-2345678"}}, 404),
        (url, key, {"content": b"phone=1", "headers": {"content-type": "text/plain"}}, 415),
        (url, key, {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422),
        (url, key, {"json": ["a", "list"]}, 422),
        (url, key, {"json": {"name": "no way to reach me"}}, 422),
        (url, key, {"json": {"phone": "not a number"}}, 422),
        (url, key, {"json": {"phone": "054-2345678", "email": "nope"}}, 422),
        (url, key, {"json": {"phone": "054-2345678", "name": "x" * 300}}, 422),
        (
            url,
            key,
            {"content": b"x" * 2_000_000, "headers": {"content-type": "application/json"}},
            413,
        ),
    ]
    for path, headers, request, status in cases:
        extra_headers = {**headers, **request.pop("headers", {})}
        answer = await client.post(path, headers=extra_headers, **request)
        assert answer.status_code == status, (path, request, answer.text[:200])
        if status != 413:
            assert "error" in answer.json()
    invalid = await client.post(url, headers=key, json={"phone": "123"})
    assert invalid.json()["field"] == "phone"
    assert await counts(db) == (0, 0)


async def test_a_form_speaks_its_language_and_keeps_a_number_of_an_unallocated_range(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Issue 24, point 12: the refusal reads as the form does (its Accept-Language: the embed
    script sends the form's lang), and a number that could exist but lies in a range not
    allocated yet makes a lead anyway, marked "check the number" for the secretary."""
    async with db.transaction() as session:
        business = await make_business(session, slug="mizrahi")
        secretary = await make_user(session, "secretary", business, locale="he")
    url = "/intake/mizrahi/form"
    hebrew = {"X-Intake-Key": business.intake_key, "Accept-Language": "he"}
    english = {"X-Intake-Key": business.intake_key, "Accept-Language": "en"}
    for headers, words in ((hebrew, "כתבו שם"), (english, "Write a name")):
        refused = await client.post(
            url, headers=headers, json={"phone": "054-2345678", "name": "x" * 300}
        )
        assert refused.status_code == 422 and refused.json()["field"] == "name"
        assert refused.json()["error"].startswith(words)
    impossible = await client.post(url, headers=hebrew, json={"phone": "123", "name": "דן"})
    assert impossible.status_code == 422 and impossible.json()["field"] == "phone"
    assert (
        "בדקו את הספרות" in impossible.json()["error"] and "123" not in impossible.json()["error"]
    )
    assert await counts(db) == (0, 0)

    kept = {}
    for typed in ("054-1234567", "052-111-2222", "054-2345678"):
        answer = await client.post(url, headers=hebrew, json={"phone": typed, "name": "רון"})
        assert answer.status_code == 201, answer.text
        kept[typed] = answer.json()["lead_id"]
    async with db.transaction(write=False) as session:
        leads = {
            lead.external_id or str(lead.id): lead for lead in await session.scalars(select(Lead))
        }
        phones = set(await session.scalars(select(Contact.phone)))
    checks = {str(lead.id): lead.phone_check for lead in leads.values()}
    assert checks == {
        kept["054-1234567"]: "054-1234567",
        kept["052-111-2222"]: "052-111-2222",
        kept["054-2345678"]: "",
    }
    assert phones == {"+972541234567", "+972521112222", "+972542345678"}  # findable when they call

    await sign_in(client, secretary.email)
    page = await client.get(f"/leads/{kept['052-111-2222']}")
    assert "לבדוק את המספר" in page.text and '<bdi dir="ltr">052-111-2222</bdi>' in page.text
    sure = await client.get(f"/leads/{kept['054-2345678']}")
    assert sure.status_code == 200 and "לבדוק את המספר" not in sure.text
