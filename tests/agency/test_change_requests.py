"""Changes that commit the agency need the agency (issue 24, point 6), through HTTP: an owner's
change inside the agency's contract is made at once; 24/7, hours beyond the contract and another
time zone become a request the admin approves or declines, and the owner reads where it stands;
every change of hours, lines, keys, tokens and people is in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from console.base.db import Database
from models import ApiToken, AuditEvent, Business, CannedReply, ChangeRequest, Line
from tests.factories import csrf_token, make_business, make_user, sign_in

WEEK = {
    "timezone": "Asia/Jerusalem",
    **{f"{d}_start": "08:00" for d in ("sun", "mon", "tue", "wed", "thu")},
    **{f"{d}_end": "18:00" for d in ("sun", "mon", "tue", "wed", "thu")},
    "fri_start": "08:00",
    "fri_end": "13:00",
}


def a_saturday() -> str:
    today = datetime.now(UTC).date() + timedelta(days=14)
    return (today + timedelta(days=(5 - today.weekday()) % 7)).isoformat()


async def business_now(db: Database, business_id: object) -> Business:
    async with db.transaction(write=False) as session:
        return await session.get_one(Business, business_id, populate_existing=True)


async def states(db: Database) -> dict[str, int]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(ChangeRequest.state, func.count()).group_by(ChangeRequest.state)
        )
        return {state: int(n) for state, n in rows.all()}


async def test_what_commits_the_agency_waits_for_the_agency(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        plumbing = await make_business(session, name="אינסטלציה כהן")
        admin = await make_user(session, "admin", name="מיכל")
        avi = await make_user(session, "owner", plumbing, name="אבי")
    hours = f"/portal/businesses/{plumbing.id}/hours"
    await sign_in(client, avi.email)
    token = await csrf_token(client, hours)

    # inside the contract (a shorter Sunday): made at once
    shorter = {**WEEK, "csrf_token": token, "sun_start": "09:00", "sun_end": "17:00"}
    saved = await client.post(hours, data=shorter)
    assert saved.status_code == 303 and "saved=1" in saved.headers["location"]
    assert (await business_now(db, plumbing.id)).weekly_hours["sun"] == [["09:00", "17:00"]]
    # ... and back to the contract's Sunday: still his to set
    assert (await client.post(hours, data={**WEEK, "csrf_token": token})).status_code == 303

    # beyond it (a Saturday), 24/7, another zone: requests; nothing changes
    saturday = {**WEEK, "csrf_token": token, "sat_start": "10:00", "sat_end": "14:00"}
    asked = await client.post(hours, data=saturday)
    assert asked.status_code == 303 and "requested=1" in asked.headers["location"]
    page = await client.get(asked.headers["location"])
    assert 'id="requested"' in page.text and "ממתין לסוכנות" in page.text
    assert "10:00–14:00" in page.text
    assert (await business_now(db, plumbing.id)).weekly_hours["sat"] == []
    always = {**WEEK, "csrf_token": token, "always_open": "1"}
    assert "requested=1" in (await client.post(hours, data=always)).headers["location"]
    london = {**WEEK, "csrf_token": token, "timezone": "Europe/London"}
    assert "requested=1" in (await client.post(hours, data=london)).headers["location"]
    special = {"csrf_token": token, "date": a_saturday(), "kind": "special"}
    special |= {"special_start": "09:00", "special_end": "12:00"}
    assert (
        "requested=1"
        in (await client.post(f"{hours}/exceptions", data=special)).headers["location"]
    )
    closed = {"csrf_token": token, "date": a_saturday(), "kind": "closed"}
    assert "saved=1" in (await client.post(f"{hours}/exceptions", data=closed)).headers["location"]
    assert await states(db) == {"pending": 2, "withdrawn": 2}  # each newer one replaces
    unchanged = await business_now(db, plumbing.id)
    assert unchanged.timezone == "Asia/Jerusalem" and not unchanged.always_open
    assert (await client.post("/agency/requests/x", data={"csrf_token": token})).status_code == 404

    # the admin answers: a note too long comes back in place; decline one, approve the other
    client.cookies.clear()
    await sign_in(client, admin.email)
    token = await csrf_token(client, "/agency/requests")
    listed = await client.get("/agency/requests")
    async with db.transaction(write=False) as session:
        pending = {
            r.kind: r
            for r in await session.scalars(
                select(ChangeRequest).where(ChangeRequest.state == "pending")
            )
        }
    assert set(pending) == {"hours", "exception"} and "Europe/London" in listed.text
    decide = f"/agency/requests/{pending['hours'].id}"
    too_long = {"csrf_token": token, "decision": "approve", "note": "ש" * 501}
    refused = await client.post(decide, data=too_long)
    assert refused.status_code == 422
    assert f'id="decide-{pending["hours"].id}-note-error"' in refused.text
    assert "ש" * 501 in refused.text
    assert (await client.post(decide, data={**too_long, "decision": "maybe"})).status_code == 422
    approve = {"csrf_token": token, "decision": "approve", "note": "מאושר מינואר"}
    assert (await client.post(decide, data=approve)).status_code == 303
    again = await client.post(decide, data=approve)
    assert again.status_code == 409 and f'id="decide-{pending["hours"].id}-error"' in again.text
    decline = {"csrf_token": token, "decision": "decline", "note": "אין משמרת בשבת"}
    declined = await client.post(f"/agency/requests/{pending['exception'].id}", data=decline)
    assert declined.status_code == 303
    assert (await client.post("/agency/requests/not-an-id", data=decline)).status_code == 404

    approved = await business_now(db, plumbing.id)
    assert approved.timezone == "Europe/London" and approved.contract_hours is not None
    special_hours = (approved.hours_exceptions or {}).get("special_hours") or {}
    assert a_saturday() not in special_hours

    # the owner reads the answers on his hours page
    client.cookies.clear()
    await sign_in(client, avi.email)
    mine = (await client.get(hours)).text
    assert "אושר" in mine and "מאושר מינואר" in mine and "נדחה" in mine and "אין משמרת בשבת" in mine

    async with db.transaction(write=False) as session:
        actions = list(await session.scalars(select(AuditEvent.action)))
    assert actions.count("hours.saved") == 3  # his two, and the approval's
    assert actions.count("change_request.made") == 4
    assert "change_request.approved" in actions and "change_request.declined" in actions
    assert actions.count("hours.exception_set") == 1  # the closed Saturday


async def test_lines_keys_replies_and_tokens_are_audited(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        shop = await make_business(session)
        admin = await make_user(session, "admin")
    await sign_in(client, admin.email)
    token = await csrf_token(client, f"/agency/businesses/{shop.id}/channels")
    lines = f"/agency/businesses/{shop.id}/lines"
    line = {"csrf_token": token, "channel": "sms", "address": "+97235550001", "label": ""}
    assert (await client.post(lines, data=line)).status_code == 303
    assert (await client.post(lines, data=line)).status_code == 303  # again: nothing new
    key = f"/agency/businesses/{shop.id}/channels/key"
    assert (await client.post(key, data={"csrf_token": token})).status_code == 303
    made = await client.post("/settings/tokens", data={"csrf_token": token, "name": "crm"})
    assert made.status_code == 200
    async with db.transaction(write=False) as session:
        line_id = await session.scalar(select(Line.id))
        token_id = await session.scalar(select(ApiToken.id))
    removed = await client.post(f"{lines}/{line_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    replies = f"/agency/businesses/{shop.id}/replies"
    reply = {"csrf_token": token, "locale": "he", "title": "מחירון", "body": "נשלח בוואטסאפ"}
    assert (await client.post(replies, data=reply)).status_code == 303
    async with db.transaction(write=False) as session:
        reply_id = await session.scalar(select(CannedReply.id))
    gone = await client.post(f"{replies}/{reply_id}/remove", data={"csrf_token": token})
    assert gone.status_code == 303
    revoke = f"/settings/tokens/{token_id}/revoke"
    assert (await client.post(revoke, data={"csrf_token": token})).status_code == 303
    async with db.transaction(write=False) as session:
        rows = (await session.execute(select(AuditEvent.action, AuditEvent.details))).all()
    actions = [a for a, _ in rows]
    for action in ("line.added", "line.removed", "intake_key.rotated", "reply.saved"):
        assert actions.count(action) == 1, action
    assert actions.count("token.created") == 1 and actions.count("token.revoked") == 1
    assert actions.count("reply.removed") == 1
    assert all("secret" not in str(d) for _, d in rows)
