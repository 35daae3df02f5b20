"""A claim protects the lead (issue 21, point 2): while Noa holds it, Michal cannot reply, add a
note, move its stage or start a call on it; she is told who holds it, in the form she used, with
what she typed kept, and may ask for it; Noa gives it or keeps it; an admin reassigns at once.
Two secretaries acting on one free lead at the same moment never both succeed."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from console.base.db import Database
from console.channels.lines import add_line
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.people.audit import Actor, ViewWriter
from models import AuditEvent, Business, Event, Interaction, Lead, User
from tests.factories import counting, csrf_token, make_business, make_user, sign_in

HTMX = {"HX-Request": "true"}
LINE = "+97235551234"
REQUEST_KEY = re.compile(r'name="request_key" value="([^"]+)"')


async def a_lead_and_two_secretaries(db: Database) -> tuple[Business, Lead, User, User, User]:
    async with db.transaction() as session:
        business = await make_business(session, name="אינסטלציה כהן")
        await add_line(session, business, "sms", LINE)
        noa = await make_user(session, "secretary", business, name="נועה")
        michal = await make_user(session, "secretary", business, name="מיכל")
        admin = await make_user(session, "admin", name="רותי")
        lead = await arrivals.create_lead(
            session,
            noa,
            NewLead(business_id=str(business.id), phone="054-2345678", name="דנה"),
            now=datetime.now(UTC),
        )
    return business, lead, noa, michal, admin


async def signed_in_client(app: object, user: User) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
    await sign_in(client, user.email)
    return client


async def interactions_of(db: Database, lead: Lead) -> int:
    async with db.transaction(write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(Interaction).where(Interaction.lead_id == lead.id)
        )
    return int(count or 0)


async def test_what_another_secretary_holds_is_refused_in_place_and_nothing_changes(
    app: object, db: Database
) -> None:
    _business, lead, noa, michal, _admin = await a_lead_and_two_secretaries(db)
    holder = await signed_in_client(app, noa)
    token = await csrf_token(holder, "/inbox")
    taken = await holder.post(f"/leads/{lead.id}/claim", data={"csrf_token": token}, headers=HTMX)
    assert taken.status_code == 204

    other = await signed_in_client(app, michal)
    token = await csrf_token(other, f"/leads/{lead.id}")
    page = (await other.get(f"/leads/{lead.id}")).text
    assert 'class="row takeover-offer"' in page  # she sees who holds it, and may ask
    assert 'class="row takeover-offer"' not in (await holder.get(f"/leads/{lead.id}")).text
    typed = "אני אחזור אליך מחר בבוקר"
    attempts = [
        ("replies", {"channel": "sms", "text": typed}, 'id="reply-form"'),
        ("notes", {"notes": typed}, 'id="note-form"'),
        ("stage", {"stage": "quote", "deal_value": "4500", "lost_reason": ""}, 'id="stage-form"'),
        ("calls", {"kind": "outbound_call"}, 'id="start-form"'),
    ]
    for path, data, form in attempts:
        answer = await other.post(
            f"/leads/{lead.id}/{path}", data={"csrf_token": token, **data}, headers=HTMX
        )
        assert answer.status_code == 409, (path, answer.text)
        assert answer.text.lstrip().startswith("<form") and form in answer.text, path
        assert "נועה" in answer.text, path  # the holder, named
        assert "Ask to take over" in answer.text or "לבקש" in answer.text, path
        if path in ("replies", "notes"):
            assert typed in answer.text, path  # what she typed is still there
        if path == "stage":
            assert 'value="4500"' in answer.text
    # without htmx: the whole lead page, refused, the reply as typed
    plain = await other.post(
        f"/leads/{lead.id}/replies", data={"csrf_token": token, "channel": "sms", "text": typed}
    )
    assert plain.status_code == 409 and "<html" in plain.text and typed in plain.text
    assert await interactions_of(db, lead) == 0
    async with db.transaction(write=False) as session:
        stored = await session.get(Lead, lead.id)
        assert stored is not None
        assert (stored.stage, stored.claimed_by_id) == ("new", noa.id)
    await holder.aclose()
    await other.aclose()


async def test_the_holder_is_asked_and_gives_or_keeps_the_lead_and_an_admin_reassigns(
    app: object, db: Database
) -> None:
    _business, lead, noa, michal, admin = await a_lead_and_two_secretaries(db)
    holder = await signed_in_client(app, noa)
    token_n = await csrf_token(holder, "/inbox")
    await holder.post(f"/leads/{lead.id}/claim", data={"csrf_token": token_n}, headers=HTMX)
    other = await signed_in_client(app, michal)
    token_m = await csrf_token(other, f"/leads/{lead.id}")

    asked = await other.post(
        f"/leads/{lead.id}/takeover", data={"csrf_token": token_m}, headers=HTMX
    )
    assert asked.status_code == 200 and f'id="takeover-{lead.id}"' in asked.text
    assert "נועה" in asked.text
    kept = await holder.post(
        f"/leads/{lead.id}/takeover/answer",
        data={"csrf_token": token_n, "asker": str(michal.id), "answer": "keep"},
        headers=HTMX,
    )
    assert kept.status_code == 200
    await other.post(f"/leads/{lead.id}/takeover", data={"csrf_token": token_m}, headers=HTMX)
    given = await holder.post(
        f"/leads/{lead.id}/takeover/answer",
        data={"csrf_token": token_n, "asker": str(michal.id), "answer": "give"},
        headers=HTMX,
    )
    assert given.status_code == 204 and given.headers["HX-Location"] == f"/leads/{lead.id}"
    # Michal holds it now: her reply goes, Noa's note is refused naming Michal.
    sent = await other.post(
        f"/leads/{lead.id}/replies",
        data={"csrf_token": token_m, "channel": "sms", "text": "שלום דנה"},
        headers=HTMX,
    )
    assert sent.status_code == 204, sent.text
    refused = await holder.post(
        f"/leads/{lead.id}/notes", data={"csrf_token": token_n, "notes": "x"}, headers=HTMX
    )
    assert refused.status_code == 409 and "מיכל" in refused.text
    # Giving what is no longer hers is refused.
    again = await holder.post(
        f"/leads/{lead.id}/takeover/answer",
        data={"csrf_token": token_n, "asker": str(michal.id), "answer": "give"},
        headers=HTMX,
    )
    assert again.status_code == 409

    boss = await signed_in_client(app, admin)
    token_a = await csrf_token(boss, f"/leads/{lead.id}")
    moved = await boss.post(
        f"/leads/{lead.id}/reassign", data={"csrf_token": token_a, "secretary": str(noa.id)}
    )
    assert moved.status_code == 303
    async with db.transaction(write=False) as session:
        stored = await session.get(Lead, lead.id)
        assert stored is not None and stored.claimed_by_id == noa.id
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.subject_id == str(lead.id), AuditEvent.action != "lead.viewed")
                .order_by(AuditEvent.at, AuditEvent.id)
            )
        )
        kinds = list(
            await session.scalars(
                select(Event.kind)
                .where(Event.business_id == lead.business_id, Event.kind.like("lead.%"))
                .order_by(Event.seq)
            )
        )
    assert sorted(actions) == sorted(
        [
            "lead.takeover_asked",
            "lead.takeover_kept",
            "lead.takeover_asked",
            "lead.takeover_given",
            "lead.reassigned",
        ]
    ), actions
    assert kinds.count("lead.takeover_asked") == 2 and "lead.takeover_kept" in kinds
    for client in (holder, other, boss):
        await client.aclose()


async def test_two_secretaries_acting_on_one_free_lead_at_once_never_both_succeed(
    app: object, db: Database
) -> None:
    """Each pair presses at the same instant on a lead nobody holds: exactly one goes on (and
    holds it now), the other reads who took it a moment ago."""
    _business, _lead, noa, michal, _admin = await a_lead_and_two_secretaries(db)
    pair = [noa, michal]
    clients = [await signed_in_client(app, s) for s in pair]
    tokens = [await csrf_token(c, "/inbox") for c in clients]
    actions = [
        ("replies", {"channel": "sms", "text": "שלום"}),
        ("notes", {"notes": "הערה"}),
        ("stage", {"stage": "contacted"}),
        ("calls", {"kind": "outbound_call"}),
    ]
    for path, data in actions:
        async with db.transaction() as session:
            lead = await arrivals.create_lead(
                session,
                noa,
                NewLead(business_id=str(_business.id), phone="054-2345678", name=path),
                now=datetime.now(UTC),
            )
        answers = await asyncio.gather(
            *(
                c.post(
                    f"/leads/{lead.id}/{path}",
                    data={"csrf_token": t, "request_key": uuid.uuid4().hex, **data},
                    headers=HTMX,
                )
                for c, t in zip(clients, tokens, strict=True)
            )
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [204, 409], (path, [a.text[:300] for a in answers])
        loser = next(a for a in answers if a.status_code == 409)
        async with db.transaction(write=False) as session:
            stored = await session.get(Lead, lead.id)
            assert stored is not None
            winner = next(s for s in pair if s.id == stored.claimed_by_id)
        assert f"{winner.name} took this lead a moment ago." in loser.text or (
            winner.name in loser.text
        ), loser.text
        if path != "stage":
            assert await interactions_of(db, lead) == 1, path
    for client in clients:
        await client.aclose()


async def test_views_of_a_lead_at_once_are_each_audited_in_one_insert(
    app: object, db: Database
) -> None:
    """Two secretaries open the lead page twice each at the same moment: every opening is in the
    audit log with who and how, each page answered once its row is committed. Views waiting
    together are written together: one INSERT, not one transaction a view."""
    business, lead, noa, michal, _admin = await a_lead_and_two_secretaries(db)
    clients = [await signed_in_client(app, s) for s in (noa, michal)]
    pages = await asyncio.gather(
        *(client.get(f"/leads/{lead.id}") for client in clients for _ in range(2))
    )
    assert [page.status_code for page in pages] == [200] * 4
    async with db.transaction(write=False) as session:
        views = (
            await session.execute(
                select(AuditEvent.actor_id, AuditEvent.business_id, AuditEvent.details).where(
                    AuditEvent.subject_id == str(lead.id), AuditEvent.action == "lead.viewed"
                )
            )
        ).all()
    assert sorted((str(actor), via["via"]) for actor, _b, via in views) == sorted(
        [(str(noa.id), "page")] * 2 + [(str(michal.id), "page")] * 2
    )
    assert {business_id for _a, business_id, _d in views} == {business.id}

    writer = ViewWriter(db)
    now = datetime.now(UTC)
    with counting(db) as statements:
        await asyncio.gather(
            *(
                writer.lead_viewed(lead.id, business.id, actor=Actor(who, now, "10.0.0.1"))
                for who in (noa, michal, noa)
            )
        )
    assert [s.split("(")[0] for s in statements] == ["INSERT INTO audit_events "]
    async with db.transaction(write=False) as session:
        written = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.subject_id == str(lead.id), AuditEvent.address == "10.0.0.1")
        )
    assert written == 3
