"""Errors stay in place (issue 21, point 5): each refusable form, posted by htmx with bad input,
answers 4xx with that form alone — the reason beside the field it is about, and what was typed
still in it — and changes nothing. A table of form → bad input → field, walked over HTTP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.channels.lines import add_line
from console.intake import arrivals
from console.intake.arrivals import NewLead
from console.leads import leads
from models import Appointment, Business, Interaction, Line, SlaPolicy, Task, User
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_business, make_user, sign_in

SUNDAY_9 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)  # 09:00 in Jerusalem, a working Sunday
MONDAY = "2026-11-23"
LINE = "+97235551234"
HTMX = {"HX-Request": "true"}


@dataclass(frozen=True)
class Refusal:
    """One row of the table: who posts where, what, and what must come back."""

    name: str
    who: str  # "secretary" or "admin"
    path: str  # {lead}, {business} are filled in
    data: dict[str, str]
    status: int
    form: str  # the id of the form that comes back
    error: str  # the id of the message beside the field
    kept: list[str] = field(default_factory=list)  # what she typed, as it must be in the form
    whole_page: bool = False  # a plain form (its buttons post the page): the page comes back


TABLE = [
    Refusal(
        "a lost lead without a reason",
        "secretary",
        "/leads/{lead}/stage",
        {"stage": "lost", "deal_value": "1200", "lost_reason": " "},
        422,
        "stage-form",
        "stage-lost_reason-error",
        ['value="1200"', '<option value="lost" selected>'],
    ),
    Refusal(
        "a deal value that is no number",
        "secretary",
        "/leads/{lead}/stage",
        {"stage": "quote", "deal_value": "אלף", "lost_reason": ""},
        422,
        "stage-form",
        "stage-deal_value-error",
        ['value="אלף"'],
    ),
    Refusal(
        "an empty reply",
        "secretary",
        "/leads/{lead}/replies",
        {"channel": "sms", "text": "  "},
        422,
        "reply-form",
        "reply-text-error",
        ['<option value="sms" selected>'],
    ),
    Refusal(
        "a reply on a channel the lead has not",
        "secretary",
        "/leads/{lead}/replies",
        {"channel": "fax", "text": "נחזור אליך מחר"},
        422,
        "reply-form",
        "reply-channel-error",
        [">נחזור אליך מחר</textarea>"],
    ),
    Refusal(
        "an empty note",
        "secretary",
        "/leads/{lead}/notes",
        {"notes": ""},
        422,
        "note-form",
        "note-notes-error",
    ),
    Refusal(
        "a hand-off without a title",
        "secretary",
        "/leads/{lead}/tasks",
        {"title": "", "due": "2026-11-23T10:00", "details": "לבדוק את הברז", "priority": "high"},
        422,
        "handoff-form",
        "handoff-title-error",
        [">לבדוק את הברז</textarea>", 'value="2026-11-23T10:00"'],
    ),
    Refusal(
        "an appointment outside the hours",
        "secretary",
        "/leads/{meeting}/appointments",
        {"day": MONDAY, "start": "03:00", "minutes": "60", "title": "מדידה"},
        422,
        "appointment-form",
        "appointment-start-error",
        ['value="03:00"', 'value="מדידה"', f'value="{MONDAY}"'],
    ),
    Refusal(
        "an appointment over a taken one",
        "secretary",
        "/leads/{meeting}/appointments",
        {"day": MONDAY, "start": "10:30", "minutes": "30", "title": "שנייה"},
        409,
        "appointment-form",
        "appointment-start-error",
        ['value="10:30"', 'value="שנייה"'],
    ),
    Refusal(
        "an SLA warning of 150%",
        "admin",
        "/agency/businesses/{business}/sla",
        {"channel": "sms", "priority": "", "minutes": "30", "warn_at_percent": "50,150"},
        422,
        "policy-form",
        "policy-warn_at_percent-error",
        ['value="50,150"', 'value="30"', '<option value="sms" selected>'],
    ),
    Refusal(
        "an SLA target that is no number",
        "admin",
        "/agency/businesses/{business}/sla",
        {"channel": "", "priority": "", "minutes": "half an hour", "warn_at_percent": "50"},
        422,
        "policy-form",
        "policy-first_response_minutes-error",
        ['value="half an hour"'],
    ),
    Refusal(
        "a hand-off promise of no minutes",
        "admin",
        "/agency/businesses/{business}/sla/tasks",
        {"acknowledge_minutes": "0", "remind_before_due_minutes": "45"},
        422,
        "task-policy",
        "task_policy-acknowledge_minutes-error",
        ['value="0"', 'value="45"'],
    ),
    Refusal(
        "quote follow-ups out of order",
        "admin",
        "/agency/businesses/{business}/sla/reminders",
        {"quote_days": "10,2", "class_a_days": "14", "class_b_days": "30", "class_c_days": "90"}
        | {"silent_days": "90", "quote_as": "task", "class_as": "task"},
        422,
        "reminders",
        "reminders-quote_days-error",
        ['value="10,2"'],
    ),
    Refusal(
        "a line that belongs to another business",
        "admin",
        "/agency/businesses/{business}/lines",
        {"channel": "sms", "address": "03-555-9999", "label": "הקו של השכן"},
        422,
        "line-form",
        "line-address-error",
        ['value="03-555-9999"', 'value="הקו של השכן"'],
    ),
    Refusal(
        "a line that is no e-mail address",
        "admin",
        "/agency/businesses/{business}/lines",
        {"channel": "email", "address": "office at example", "label": ""},
        422,
        "line-form",
        "line-address-error",
        ['value="office at example"'],
    ),
    Refusal(
        "a new business with a slug that is taken",
        "admin",
        "/agency/businesses",
        {"name": "כהן ובניו", "slug": "{slug}", "timezone": "Asia/Jerusalem", "locale": "he"},
        409,
        "new-business",
        "new-business-slug-error",
        ['value="כהן ובניו"', 'value="{slug}"'],
    ),
    Refusal(
        "a new business with no name",
        "admin",
        "/agency/businesses",
        {"name": "", "slug": "new-one", "timezone": "Asia/Jerusalem", "locale": "en"},
        422,
        "new-business",
        "new-business-name-error",
        ['value="new-one"', '<option value="en" selected>'],
    ),
    Refusal(
        "an invitation to an e-mail that has a user",
        "admin",
        "/agency/users",
        {"email": "{email}", "name": "מיכל השנייה", "role": "owner", "locale": "he"},
        409,
        "invite",
        "invite-email-error",
        ['value="מיכל השנייה"', '<option value="owner" selected>'],
    ),
    Refusal(
        "an invitation to no e-mail address",
        "admin",
        "/agency/users",
        {"email": "michal at home", "name": "מיכל", "role": "secretary", "locale": "he"},
        422,
        "invite",
        "invite-email-error",
        ['value="michal at home"'],
    ),
    Refusal(
        "a customer card with a phone that is no number",
        "secretary",
        "/contacts/{contact}",
        {"name": "דנה כהן", "phone": "054-23", "email": "", "notes": "מעדיפה בוקר"},
        422,
        "card",
        "card-phone-error",
        ['value="054-23"', 'value="דנה כהן"', ">מעדיפה בוקר</textarea>"],
    ),
    Refusal(
        "a customer card with earlier purchases that are no sum",
        "secretary",
        "/contacts/{contact}",
        {"name": "דנה", "phone": "054-2345678", "earlier_value": "הרבה"},
        422,
        "card",
        "card-earlier_value-error",
        ['value="הרבה"'],
    ),
    Refusal(
        "a customer card with a birthday no calendar has",
        "secretary",
        "/contacts/{contact}",
        {"name": "דנה", "birthday": "31/02/1990"},
        422,
        "card",
        "card-birthday-error",
        ['value="31/02/1990"', 'value="דנה"'],
    ),
    Refusal(
        "an empty comment on the lead",
        "secretary",
        "/leads/{lead}/comments",
        {"body": "  ", "next": "/leads/{lead}"},
        422,
        "comment-form-{lead}",
        "comment-body-error",
        ['name="next" value="/leads/{lead}"'],
    ),
    Refusal(
        "a script without a greeting",
        "admin",
        "/agency/businesses/{business}/script",
        {"greeting": "", "questions": "* מה הכתובת? | text", "faq": "", "action": "publish"},
        422,
        "script-form",
        "script-greeting-error",
        ["* מה הכתובת? | text</textarea>"],
        whole_page=True,
    ),
    Refusal(
        "a canned reply without its text",
        "admin",
        "/agency/businesses/{business}/replies",
        {"locale": "en", "title": "נחזור אליך", "body": ""},
        422,
        "reply-form",
        "canned-body-error",
        ['value="נחזור אליך"', '<option value="en" selected>'],
        whole_page=True,
    ),
]


@pytest.fixture
async def web(db: Database) -> AsyncIterator[object]:
    settings = Settings(database_url=db.url, secret_key=SECRET)
    app = create_app(settings, db=db, clock=MovableClock(SUNDAY_9), run_jobs=False)
    async with app.router.lifespan_context(app):
        yield app


async def count_everything(db: Database) -> tuple[int, ...]:
    async with db.transaction(write=False) as session:
        counts = []
        for model in (Interaction, Task, Appointment, SlaPolicy, Line, Business, User):
            counts.append(await session.scalar(select(func.count()).select_from(model)) or 0)
    return tuple(counts)


async def test_every_refused_form_comes_back_in_place_as_typed(web: object, db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session, name="אינסטלציה כהן")
        neighbour = await make_business(session, name="מרפאת לוי")
        await add_line(session, business, "sms", LINE)
        await add_line(session, neighbour, "sms", "03-555-9999")
        secretary = await make_user(session, "secretary", business, name="מיכל")
        admin = await make_user(session, "admin", name="רותי")
        lead, meeting = [
            await arrivals.create_lead(
                session,
                None,
                NewLead(business_id=str(business.id), phone=phone, name=name),
                now=SUNDAY_9,
                business=business,
            )
            for name, phone in (("דנה", "054-2345678"), ("יוסי", "052-7654321"))
        ]
        await leads.move_stage(session, secretary, meeting.id, stage="meeting", now=SUNDAY_9)
    places = {
        "lead": lead.id,
        "meeting": meeting.id,
        "business": business.id,
        "slug": business.slug,
        "email": secretary.email,
        "contact": lead.contact_id,
    }
    transport = httpx.ASGITransport(app=web)  # type: ignore[arg-type]
    clients = {}
    for role, user in (("secretary", secretary), ("admin", admin)):
        clients[role] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        await sign_in(clients[role], user.email)
    tokens = {
        "secretary": await csrf_token(clients["secretary"], f"/leads/{lead.id}"),
        "admin": await csrf_token(clients["admin"], f"/agency/businesses/{business.id}/sla"),
    }
    first = await clients["secretary"].post(
        f"/leads/{meeting.id}/appointments",
        data={"csrf_token": tokens["secretary"], "day": MONDAY, "start": "10:00"}
        | {"minutes": "60"},
        headers=HTMX,
    )
    assert first.status_code == 204, first.text
    before = await count_everything(db)

    for case in TABLE:
        answer = await clients[case.who].post(
            case.path.format(**places),
            data={"csrf_token": tokens[case.who]}
            | {name: value.format(**places) for name, value in case.data.items()},
            headers=HTMX,
        )
        assert answer.status_code == case.status, (case.name, answer.text[:500])
        html = answer.text
        assert ("<html" in html) == case.whole_page, case.name  # else the form alone
        form_id = case.form.format(**places)
        assert re.search(rf'<(form|section)[^>]* id="{form_id}"', html), case.name
        message = re.search(
            rf'id="{case.error}" class="alert field-error" role="alert">([^<]+)<', html
        )
        assert message and message.group(1).strip(), (case.name, html[:1500])
        field_name = case.error.split("-", 1)[1].removesuffix("-error")
        assert f'aria-describedby="{case.error}"' in html, (case.name, field_name)
        for typed in case.kept:
            assert typed.format(**places) in html, (case.name, typed)
    assert await count_everything(db) == before  # nothing was written by any of them

    # Without htmx (a browser without JavaScript) each is the whole page again, as typed, with
    # the reason beside the field: never an error page.
    for case in TABLE:
        answer = await clients[case.who].post(
            case.path.format(**places),
            data={"csrf_token": tokens[case.who]}
            | {name: value.format(**places) for name, value in case.data.items()},
        )
        assert answer.status_code == case.status, (case.name, answer.text[:500])
        assert "<html" in answer.text and f'id="{case.error}"' in answer.text, case.name
        for typed in case.kept:
            assert typed.format(**places) in answer.text, (case.name, typed)
    assert await count_everything(db) == before

    plain = await clients["admin"].post(
        f"/agency/businesses/{business.id}/sla",
        data={"csrf_token": tokens["admin"], "minutes": "30", "warn_at_percent": "50,150"},
    )
    assert plain.status_code == 422 and "<html" in plain.text and 'value="50,150"' in plain.text
    assert "policy-warn_at_percent-error" in plain.text
    for client in clients.values():
        await client.aclose()
