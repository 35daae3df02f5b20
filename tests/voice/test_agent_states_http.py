"""Her state from the top bar, the wallboard showing it, and the business's call settings,
through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from console.base.clock import SystemClock
from console.base.db import Database
from console.voice.states import AgentState, set_state
from models import AgentStateSpan, AgentStatus, AuditEvent, CallSettings
from tests.factories import csrf_token, make_business, make_user, sign_in

HTMX = {"HX-Request": "true"}


async def test_she_sets_her_state_from_the_top_bar(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_business(session, name="אינסטלציה כהן")
        michal = await make_user(session, "secretary", shop, name="מיכל", locale="he")
    await sign_in(client, michal.email)
    inbox = await client.get("/inbox")
    assert 'id="agent-state"' in inbox.text and 'hx-get="/agent/state"' in inbox.text
    token = await csrf_token(client, "/agent/state")
    bar = await client.get("/agent/state", headers=HTMX)
    assert bar.status_code == 200 and "<html" not in bar.text
    assert 'data-state="offline"' in bar.text and "לא מחוברת" in bar.text

    ready = await client.post(
        "/agent/state", data={"csrf_token": token, "state": "available"}, headers=HTMX
    )
    assert ready.status_code == 200 and 'data-state="available"' in ready.text
    assert "זמינה" in ready.text
    lunch = await client.post(
        "/agent/state",
        data={"csrf_token": token, "state": "break", "reason": "meal"},
        headers=HTMX,
    )
    assert 'data-state="break"' in lunch.text and "ארוחה" in lunch.text

    # Refused in place, beside the buttons, and nothing changes.
    for bad in ({"state": "break", "reason": "nap"}, {"state": "on_call"}, {"state": "x"}):
        refused = await client.post("/agent/state", data={"csrf_token": token, **bad}, headers=HTMX)
        assert refused.status_code == 422, bad
        assert 'role="alert"' in refused.text and 'data-state="break"' in refused.text
    async with db.transaction() as session:
        row = await session.get(AgentStatus, michal.id)
        assert row is not None and (row.state, row.reason) == ("break", "meal")
        # The phone rings: her own choice waits until the call is over.
        await set_state(session, michal.id, AgentState.RINGING, now=row.since)
    busy = await client.post(
        "/agent/state", data={"csrf_token": token, "state": "offline"}, headers=HTMX
    )
    assert busy.status_code == 409 and 'data-state="ringing"' in busy.text
    async with db.transaction(write=False) as session:
        spans = (
            await session.scalars(
                select(AgentStateSpan)
                .where(AgentStateSpan.user_id == michal.id)
                .order_by(AgentStateSpan.started_at, AgentStateSpan.id)
            )
        ).all()
    assert [s.state for s in spans] == ["available", "break", "ringing"]
    assert [s.ended_at is None for s in spans] == [False, False, True]


async def test_the_state_form_works_without_htmx_in_english(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        dana = await make_user(session, "secretary", shop, name="Dana", locale="en")
    await sign_in(client, dana.email)
    page = await client.get("/agent/state")
    assert page.status_code == 200 and "<html" in page.text and "My state" in page.text
    assert page.text.count('id="agent-state"') == 1
    token = await csrf_token(client, "/agent/state")
    done = await client.post("/agent/state", data={"csrf_token": token, "state": "available"})
    assert done.status_code == 200 and "Available" in done.text


async def test_the_wallboard_shows_each_secretarys_state_and_for_how_long(
    client: httpx.AsyncClient, db: Database
) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    async with db.transaction() as session:
        shop = await make_business(session)
        admin = await make_user(session, "admin", locale="en")
        rina = await make_user(session, "secretary", shop, name="Rina")
        noa = await make_user(session, "secretary", shop, name="Noa")
        await make_user(session, "secretary", shop, name="Gone")  # offline: not listed
        earlier = now - timedelta(hours=1, minutes=3, seconds=5)
        await set_state(session, rina.id, AgentState.ON_CALL, now=earlier)
        await set_state(session, noa.id, AgentState.BREAK, now=now, reason="training")
    await sign_in(client, admin.email)
    board = await client.get("/agency/wallboard", headers=HTMX)
    assert board.status_code == 200
    text = board.text
    assert f'id="duty-{rina.id}"' in text and f'id="duty-{noa.id}"' in text
    assert "Gone" not in text
    rina_row = text[text.index(f'id="duty-{rina.id}"') :].split("</tr>")[0]
    assert 'data-state="on_call"' in rina_row and "On a call" in rina_row
    assert "1 h 03 m" in rina_row
    noa_row = text[text.index(f'id="duty-{noa.id}"') :].split("</tr>")[0]
    assert "Break · Training" in noa_row


async def test_the_admin_sets_a_businesss_call_settings(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        admin = await make_user(session, "admin", locale="en")
    await sign_in(client, admin.email)
    url = f"/agency/businesses/{shop.id}"
    page = await client.get(url)
    assert 'name="ring_seconds" value="20"' in page.text
    assert 'name="wrap_up_seconds" value="30"' in page.text
    assert 'name="service_level_seconds" value="20"' in page.text  # the industry's 80/20
    token = await csrf_token(client, url)
    typed = {
        "csrf_token": token,
        "ring_seconds": "15",
        "wait_limit_seconds": "abc",
        "wrap_up_seconds": "45",
        "service_level_seconds": "30",
    }
    refused = await client.post(f"{url}/calls", data=typed, headers=HTMX)
    assert refused.status_code == 422 and "<html" not in refused.text
    assert 'name="wait_limit_seconds" value="abc"' in refused.text  # kept as typed
    assert 'name="ring_seconds" value="15"' in refused.text
    assert 'id="calls-wait_limit_seconds-error"' in refused.text
    assert "Enter a whole number of seconds." in refused.text
    too_long = await client.post(
        f"{url}/calls", data={**typed, "wait_limit_seconds": "4000"}, headers=HTMX
    )
    assert too_long.status_code == 422 and "between 0 and 3600" in too_long.text
    too_short = await client.post(
        f"{url}/calls",
        data={**typed, "wait_limit_seconds": "90", "service_level_seconds": "2"},
        headers=HTMX,
    )
    assert too_short.status_code == 422 and "between 5 and 600" in too_short.text
    assert 'id="calls-service_level_seconds-error"' in too_short.text
    async with db.transaction(write=False) as session:
        assert await session.get(CallSettings, shop.id) is None
    saved = await client.post(
        f"{url}/calls", data={**typed, "wait_limit_seconds": "90"}, headers=HTMX
    )
    assert saved.status_code == 200 and "Saved." in saved.text
    plain = await client.post(f"{url}/calls", data={**typed, "wait_limit_seconds": "90"})
    assert plain.status_code == 303
    async with db.transaction(write=False) as session:
        row = await session.get(CallSettings, shop.id)
        assert row is not None
        assert (row.ring_seconds, row.wait_limit_seconds, row.wrap_up_seconds) == (15, 90, 45)
        assert row.service_level_seconds == 30
        audited = await session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "business.call_settings")
        )
        assert len(audited.all()) == 2


async def test_a_console_opening_while_her_last_one_is_taken_offline_brings_her_back(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reloading a page on a busy machine: her old socket's grace ran out and her new one
    joined while the offline change was being written, so the new one's look found her still
    available and did nothing. She must end available, not offline until her next page."""
    from types import SimpleNamespace

    from console.live.hub import Connection
    from routes import live

    async with db.transaction() as session:
        shop = await make_business(session, name="Cohen")
        michal = await make_user(session, "secretary", shop, name="Michal", locale="en")
        await set_state(session, michal.id, AgentState.AVAILABLE, now=SystemClock().now())
    # The grace's look finds nobody; by the time the offline change is written, she is back.
    looks = iter([{}, {str(michal.id): "secretary"}])
    hub = SimpleNamespace(on_duty=lambda: next(looks))
    app = SimpleNamespace(state=SimpleNamespace(db=db, hub=hub, clock=SystemClock()))
    monkeypatch.setattr(live, "OFFLINE_AFTER", 0)
    closing = Connection(
        user_id=str(michal.id),
        user_name="Michal",
        session_id="s",
        role="secretary",
        locale="en",
        businesses=frozenset({str(shop.id)}),
    )
    await live._agent_presence(app, closing, opened=False)
    async with db.transaction(write=False) as session:
        row = await session.get(AgentStatus, michal.id)
        assert row is not None and row.state == "available"
