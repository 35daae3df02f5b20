"""A secretary's SIP credentials: Kamailio's auth_ephemeral scheme, short-lived, hers only; no
phone for owners and admins, nor without a SIP server; the banner only for the one rung."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import select

from console.base.db import Database
from models import Lead, User
from models.voice import Call
from tests.factories import make_user, sign_in
from tests.voice.conftest import SECRET
from tests.voice.test_sip_http import CALLER, ask, post, shop_with_secretary


@contextlib.asynccontextmanager
async def _client_of_ctx(app: object, user: User) -> AsyncIterator[httpx.AsyncClient]:
    """Her browser: signed in over HTTP."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await sign_in(client, user.email)
        yield client


async def test_a_secretary_gets_short_lived_credentials_of_her_own(
    db: Database, phone_app: object
) -> None:
    _, michal = await shop_with_secretary(db)
    async with _client_of_ctx(phone_app, michal) as client:
        answer = await client.get("/phone/credentials")
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        found = answer.json()
        expiry, user = found["username"].split(":")
        assert user == michal.id.hex and found["uri"] == f"sip:{michal.id.hex}@mazkira.test"
        assert 3500 < int(expiry) - time.time() <= 3600
        digest = hmac.new(SECRET.encode(), found["username"].encode(), hashlib.sha1).digest()
        assert found["password"] == base64.b64encode(digest).decode()
        assert found["refresh_in"] < 3600 and found["ws_url"] == "ws://127.0.0.1:9/"
        # The banner of a call: hers while it rings her, nobody else's.
        assert (await post(client, "/sip/route", ask("banner-call"))).status_code == 200
        banner = await client.get("/phone/calls/banner-call")
        assert banner.status_code == 200 and "אינסטלציה כהן" in banner.text
        assert (await client.get("/phone/calls/no-such-call")).status_code == 404
        # Her contact card calls the contact from the console, logged on his open lead.
        lead_id, contact_id = await _lead_and_contact_of(db, "banner-call")
        card = await client.get(f"/contacts/{contact_id}")
        assert card.status_code == 200
        assert f'data-phone-dial="{CALLER}" data-phone-lead="{lead_id}"' in card.text


async def test_no_phone_for_owners_admins_strangers_or_without_a_sip_server(
    db: Database, phone_app: object, app: object
) -> None:
    _, michal = await shop_with_secretary(db)
    async with db.transaction() as session:
        owner = await make_user(session, "owner", name="אבי")
        admin = await make_user(session, "admin", name="Admin")
        other = await make_user(session, "secretary", name="רינה")
    for user in (owner, admin):
        async with _client_of_ctx(phone_app, user) as client:
            assert (await client.get("/phone/credentials")).status_code == 403
    async with _client_of_ctx(phone_app, other) as client:
        assert (await post(client, "/sip/route", ask("not-hers"))).status_code == 200
        assert (await client.get("/phone/calls/not-hers")).status_code == 404
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=phone_app),  # type: ignore[arg-type]
        base_url="http://testserver",
    ) as stranger:
        assert (await stranger.get("/phone/credentials")).status_code == 303
    async with _client_of_ctx(app, michal) as client:  # the app without SIP_SECRET
        assert (await client.get("/phone/credentials")).status_code == 404


async def _lead_and_contact_of(db: Database, call_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.transaction(write=False) as session:
        lead_id = await session.scalar(select(Call.lead_id).where(Call.sip_call_id == call_id))
        assert lead_id is not None
        return lead_id, (await session.get_one(Lead, lead_id)).contact_id
