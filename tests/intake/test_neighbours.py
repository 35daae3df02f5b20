"""A neighbour's bad input never loses a lead: twenty good forms of one business posted at once
beside a poisoned one of another (a control character, a malformed business slug with no key, a
body nested too deep) are each answered 201 and stored, on SQLite and PostgreSQL; the poisoned
one alone is refused. The forms go through the app's one arrival writer, which writes what
comes together in one group."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import Settings
from console.base.db import Database
from console.intake import arrivals as arrivals_module
from console.intake import writer as writer_module
from console.intake.arrivals import Answer, Arrival, Arrived
from console.intake.web_forms import form_arrival
from console.intake.writer import ArrivalWriter
from models import Business, Lead
from tests.conftest import SECRET
from tests.factories import make_business

DEEP = b"[" * 100_000
# (path, what is posted, the status the poisoned form gets); the slugs reach the writer and
# are written in a group with the good forms, the rest are refused before it.
POISONS: list[tuple[str, dict[str, Any], int]] = [
    ("/intake/levi/form", {"json": {"phone": "054-2345678", "name": "דנה\x00"}}, 422),
    ("/intake/levi/form", {"data": {"phone": "054-2345678", "message": "a\x00b"}}, 422),
    ("/intake/levi/form", {"data": {"phone": "054-2345678", "name": "\x1b[31m"}}, 422),
    ("/intake/le%00vi/form", {"data": {"phone": "054-2345678"}, "key": ""}, 404),
    ("/intake/" + "x" * 300 + "/form", {"data": {"phone": "054-2345678"}, "key": ""}, 404),
    ("/intake/%D7%9C%D7%95%D7%99%E2%80%AE/form", {"json": {"phone": "1"}, "key": ""}, 404),
    ("/intake/levi/form", {"content": DEEP, "type": "application/json"}, 422),
]
GROUPED = {"x" * 300, "לוי\u202e"}


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(
        database_url=db.url,
        secret_key=SECRET,
        intake_rate_per_key=10_000,
        intake_rate_per_address=10_000,
    )


async def stored(db: Database, business: Business) -> int:
    async with db.transaction(write=False) as session:
        count = select(func.count()).select_from(Lead).where(Lead.business_id == business.id)
        return int(await session.scalar(count) or 0)


@pytest.mark.parametrize(("path", "poison", "status"), POISONS)
async def test_twenty_forms_beside_a_poisoned_one_are_all_stored(
    client: httpx.AsyncClient,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    poison: dict[str, Any],
    status: int,
) -> None:
    groups: list[set[str]] = []

    async def write(session: AsyncSession, arrivals: list[Arrival]) -> list[Answer]:
        groups.append({getattr(arrival.where, "slug", "") for arrival in arrivals})
        return await arrivals_module.write(session, arrivals)

    monkeypatch.setattr(writer_module, "write", write)
    async with db.transaction() as session:
        cohen = await make_business(session, slug="cohen")
        levi = await make_business(session, slug="levi")
    headers = {"X-Intake-Key": poison.get("key", levi.intake_key)}
    if "type" in poison:
        headers["Content-Type"] = poison["type"]
    sent = {name: poison[name] for name in ("json", "data", "content") if name in poison}
    good = [
        client.post(
            "/intake/cohen/form",
            headers={"X-Intake-Key": cohen.intake_key},
            data={"phone": f"054-23{n:05d}", "name": f"לקוח {n}", "message": "שורה\tאחת\nושתיים"},
        )
        for n in range(20)
    ]
    answers = await asyncio.gather(
        *good[:10], client.post(path, headers=headers, **sent), *good[10:]
    )
    refused = answers.pop(10)
    assert [answer.status_code for answer in answers] == [201] * 20
    assert refused.status_code == status, refused.text
    assert "error" in refused.json()
    assert await stored(db, cohen) == 20
    assert await stored(db, levi) == 0
    slug = unquote(path.split("/")[2])
    if slug in GROUPED:  # it was written in one group with good forms, then answered alone
        assert any(slug in group and "cohen" in group for group in groups), groups


async def test_a_group_with_arrivals_the_database_cannot_read_answers_each_alone(
    db: Database,
) -> None:
    """Past the routes' checks, in the writer itself: a slug holding NUL (PostgreSQL refuses it
    even in a comparison) and a form with NUL in its text, grouped with twenty good ones."""
    async with db.transaction() as session:
        cohen = await make_business(session, slug="cohen")
        levi = await make_business(session, slug="levi")
    now = cohen.created_at
    good = [
        form_arrival("cohen", cohen.intake_key, {"phone": f"054-23{n:05d}"}, now) for n in range(20)
    ]
    bad = [
        form_arrival("le\x00vi", "", {"phone": "054-2345678"}, now),
        form_arrival("levi", levi.intake_key, {"phone": "054-2345678", "name": "a\x00\x01"}, now),
    ]
    answers = await ArrivalWriter(db).receive_all([*good[:10], *bad, *good[10:]])
    no_business, cleaned = answers[10:12]
    assert all(isinstance(answer, Arrived) for answer in answers[:10] + answers[12:])
    assert getattr(no_business, "status", None) == 404
    assert isinstance(cleaned, Arrived)
    assert await stored(db, cohen) == 20
