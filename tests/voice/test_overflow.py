"""A business's overflow rules: set by the admin on the business's page (refused in place when
they cannot be), read by the owner in his portal, and read by the routing where it decides that
a call overflows: after the wait limit, at once outside the covered hours or on a holiday. The
ringing banner says which of the business's owners is away, and his note; the SIP server is told
whom to dial for the on-call phone or another business's team."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from console.base.db import Database
from console.base.errors import Invalid
from console.channels.lines import add_line
from console.people.audit import Actor
from console.tasks import on_call
from console.tasks.on_call import Link, RotaForm
from console.voice import overflow
from console.voice.calls import answer_of
from console.voice.overflow import OverflowForm
from console.voice.states import AgentState, set_state
from models import Business
from models.agents import CallSettings
from tests.factories import csrf_token, make_business, make_user, sign_in
from tests.voice.test_routing import decide, move, secretary
from tests.voice.test_sip_http import ask, post, shop_with_secretary

MONDAY_11 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 11:00 in Jerusalem: open
MONDAY_23 = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # closed
PESACH = datetime(2027, 4, 22, 9, 0, tzinfo=UTC)  # a holiday, a Thursday


async def save(db: Database, business: Business, typed: OverflowForm) -> OverflowForm:
    async with db.transaction() as session:
        found = await session.get_one(Business, business.id)
        return await overflow.save_overflow(session, Actor.command_line(MONDAY_11), found, typed)


async def test_the_routing_sends_an_overflow_where_the_rule_says(db: Database) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        neighbour = await make_business(session)
        session.add(CallSettings(business_id=shop.id, ring_seconds=15, wait_limit_seconds=60))
        dana = await secretary(session, shop)
    busy = await decide(db, shop, now=MONDAY_11, waited=61)
    assert (busy.action, busy.overflow_to, answer_of(busy)) == ("overflow", "", "action=overflow")

    with pytest.raises(Invalid) as refused:  # no rota yet: nobody to put on the phone
        await save(db, shop, OverflowForm("voicemail", "on_call"))
    assert refused.value.field == "closed"
    with pytest.raises(Invalid) as refused:
        await save(db, shop, OverflowForm("voicemail", "", "business"))
    assert refused.value.field == "other_business_id"
    with pytest.raises(Invalid) as refused:
        await save(db, shop, OverflowForm("fax"))
    assert refused.value.field == "waiting"
    await save(db, shop, OverflowForm("voicemail", "callback", "business", str(neighbour.id)))

    await move(db, dana, AgentState.AVAILABLE, MONDAY_11 - timedelta(minutes=1))
    assert (await decide(db, shop, now=MONDAY_11)).ring == (dana.id,)  # open: rings as usual
    await move(db, dana, AgentState.ON_CALL, MONDAY_11)
    waiting = await decide(db, shop, now=MONDAY_11 + timedelta(seconds=30), waited=30)
    assert waiting.action == "wait"
    over = await decide(db, shop, now=MONDAY_11 + timedelta(seconds=61), waited=61)
    voicemail = "action=overflow;to=voicemail;max=120"  # the longest message, by default
    assert (over.action, answer_of(over)) == ("overflow", voicemail)

    await move(db, dana, AgentState.AVAILABLE, MONDAY_23 - timedelta(minutes=1))
    night = await decide(db, shop, now=MONDAY_23)  # free, but closed: the rule at once
    assert (night.action, night.overflow_to) == ("overflow", "callback")
    holiday = await decide(db, shop, now=PESACH)
    assert (holiday.overflow_to, holiday.overflow_business) == ("business", neighbour.id)
    assert answer_of(holiday) == "action=overflow;to=business"


async def test_the_admin_sets_the_rules_in_place_and_the_owner_reads_them(
    db: Database, client: httpx.AsyncClient
) -> None:
    async with db.transaction() as session:
        shop = await make_business(session, name="אינסטלציה כהן")
        other = await make_business(session, name="מרפאת לוי")
        admin = await make_user(session, "admin")
        owner = await make_user(session, "owner", shop, name="אבי")
        stranger = await make_user(session, "owner", other)
    await sign_in(client, admin.email)
    path = f"/agency/businesses/{shop.id}"
    token = await csrf_token(client, path)
    page = (await client.get(path)).text
    assert 'id="overflow"' in page and f'href="{path}/on-call"' in page
    typed = {"csrf_token": token, "waiting": "voicemail", "closed": "on_call", "holiday": ""}
    refused = await client.post(f"{path}/overflow", data=typed, headers={"HX-Request": "true"})
    assert refused.status_code == 422
    assert 'id="overflow-closed-error"' in refused.text and "<h1>" not in refused.text
    assert re.search(r'<option value="voicemail" selected', refused.text)  # kept as typed
    typed.update(closed="business", other_business_id=str(other.id))
    saved = await client.post(f"{path}/overflow", data=typed, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and 'class="saved"' in saved.text
    plain = await client.post(f"{path}/overflow", data=typed)
    assert (plain.status_code, plain.headers["location"]) == (303, f"{path}#overflow")

    await client.post("/logout", data={"csrf_token": token})
    client.cookies.clear()
    await sign_in(client, owner.email)
    portal = await client.get("/portal")
    assert f"/portal/businesses/{shop.id}/on-call" in portal.text
    shown = await client.get(f"/portal/businesses/{shop.id}/on-call")
    assert shown.status_code == 200
    assert "תא קולי" in shown.text and "מרפאת לוי" in shown.text
    client.cookies.clear()
    await sign_in(client, stranger.email)
    assert (await client.get(f"/portal/businesses/{shop.id}/on-call")).status_code == 404


async def test_the_ringing_banner_says_which_owner_is_away_and_his_note(
    db: Database, phone_app: object
) -> None:
    shop, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        owner = await make_user(session, "owner", shop, name="אבי")
        owner.away_kind, owner.away_note = "meeting", "עם ספק עד הצהריים"
        owner.away_until = datetime.now(UTC) + timedelta(hours=2)
        await make_user(session, "owner", shop, name="דנה")  # available: not named
    transport = httpx.ASGITransport(app=phone_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await sign_in(client, michal.email)
        assert (await post(client, "/sip/route", ask("away-call"))).status_code == 200
        banner = await client.get("/phone/calls/away-call")
    assert banner.status_code == 200
    away = re.findall(r'<p class="ringing-away">(.*?)</p>', banner.text)
    assert len(away) == 1 and "אבי" in away[0] and "עם ספק עד הצהריים" in away[0]
    assert "בפגישה עד" in away[0]  # his status, in her language


async def test_the_sip_server_is_told_whom_to_dial_for_an_overflow(
    db: Database, phone_client: httpx.AsyncClient
) -> None:
    shop, michal = await shop_with_secretary(db)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        owner = await make_user(session, "owner", shop, name="אבי")
        owner.phone = "+972527654321"
        neighbour = await make_business(session, name="מרפאת לוי")
        await add_line(session, neighbour, "phone", "+97235559999")
        session.add(CallSettings(business_id=shop.id, wait_limit_seconds=0))
        await set_state(session, michal.id, AgentState.OFFLINE, now=now)
        found = await session.get_one(Business, shop.id)
        await on_call.save_rota(
            session, Actor.command_line(now), found, RotaForm("10", [Link(owner.id.hex, "sms")])
        )
    await save(db, shop, OverflowForm("on_call"))
    answer = await post(phone_client, "/sip/route", ask("over-1"))
    assert answer.text == "action=overflow;to=on_call;number=+972527654321"
    await save(db, shop, OverflowForm("business", other_business_id=str(neighbour.id)))
    answer = await post(phone_client, "/sip/route", ask("over-2"))
    assert answer.text == "action=overflow;to=business;line=+97235559999"
