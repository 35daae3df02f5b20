"""Against a real `mazkira serve`: the admin sets a business's rota on its page (refused in place,
then saved), a secretary hands off an urgent task, and the lead's open page is told live who is
being paged, then who has it once the page's link is answered."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from console.tasks.paging import link_url
from console.tasks.task_links import TaskLinks
from models.on_call import Page
from tests.live_client import Console, receive
from tests.servers import Server

PASSWORD = "on-call-password"
SECRET = "a-secret-key-for-the-on-call-story-0123456789"


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("on_call"), {"SECRET_KEY": SECRET})
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    for email, role, name in (
        ("michal@example.test", "secretary", "מיכל"),
        ("avi@example.test", "owner", "אבי כהן"),
        ("admin@example.test", "admin", "מנהלת"),
    ):
        business = ["--business", "cohen"] if role != "admin" else []
        server.run(
            "create-user",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--role",
            role,
            "--name",
            name,
            *business,
        )
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def consoles(agency: Server) -> AsyncIterator[dict[str, Console]]:
    signed = {
        name: await Console(agency).sign_in(f"{name}@example.test", PASSWORD)
        for name in ("michal", "admin")
    }
    yield signed
    for console in signed.values():
        await console.close()


async def test_the_lead_page_is_told_live_who_is_paged_and_who_has_it(
    agency: Server, consoles: dict[str, Console]
) -> None:
    michal, admin = consoles["michal"], consoles["admin"]
    page = (await michal.http.get("/leads/new")).text
    cohen = re.search(r'<option value="([0-9a-f-]{36})"[^>]*>אינסטלציה כהן<', page)
    assert cohen is not None
    rota_path = f"/agency/businesses/{cohen.group(1)}/on-call"
    editor = await admin.http.get(rota_path)
    assert editor.status_code == 200 and 'dir="rtl"' in editor.text
    avi = re.search(r'<option value="([0-9a-f]{32})">אבי כהן', editor.text)
    assert avi is not None
    assert (await michal.http.get(rota_path)).status_code == 404  # the admin's page only

    refused = await admin.http.post(
        rota_path,
        data={
            "csrf_token": admin.token,
            "ack_minutes": "10",
            "chain_user": avi.group(1),
            "chain_reach": "sms",
        },
        headers={"HX-Request": "true"},
    )
    assert refused.status_code == 422  # he has no phone for SMS: said beside his row, kept
    assert (
        'id="rota-chain-0-error"' in refused.text
        and f'value="{avi.group(1)}" selected' in refused.text
    )
    saved = await admin.http.post(
        rota_path,
        data={
            "csrf_token": admin.token,
            "ack_minutes": "10",
            "chain_user": avi.group(1),
            "chain_reach": "email",
        },
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200 and 'class="saved"' in saved.text

    answer = await michal.post("/leads", business_id=cohen.group(1), phone="058-7654321")
    lead = answer.headers["location"].removeprefix("/leads/").split("#")[0]
    socket = await michal.socket(page=f"lead:{lead}")
    handed = await michal.post(
        f"/leads/{lead}/tasks",
        assignee_id=str(uuid.UUID(hex=avi.group(1))),
        title="נזילה דחופה",
        due="2030-01-01T10:00",
        priority="urgent",
    )
    assert handed.status_code == 303, handed.text
    paging = await receive(socket, f'id="on-call-{lead}"')
    assert "אבי כהן" in paging and "on-call-holder waiting" in paging

    engine = create_async_engine(agency.env["DATABASE_URL"].replace("sqlite:", "sqlite+aiosqlite:"))
    try:
        async with engine.connect() as connection:
            page_id = (await connection.execute(text("SELECT id FROM pages"))).scalar_one()
    finally:
        await engine.dispose()
    link = link_url(TaskLinks(SECRET, agency.url), Page(id=uuid.UUID(str(page_id))))
    assert link is not None
    guest = Console(agency)
    try:
        assert (await guest.http.post(link.removeprefix(agency.url))).status_code == 303
    finally:
        await guest.close()
    acknowledged = await receive(socket, "on-call-holder acknowledged")
    assert "אבי כהן" in acknowledged
    shown = (await michal.http.get(f"/leads/{lead}")).text
    assert "on-call-holder acknowledged" in shown and "נזילה דחופה" in shown
    await socket.close()
