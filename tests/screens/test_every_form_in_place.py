"""Errors stay in place in every form of the product (issue 21, point 5), the owner's, the
public links' and the settings' too: each refusal below comes back with its status, the reason
beside the field (or at the top of the form when no field is the cause), what was typed still in
it, and nothing changed, both through htmx (the form alone, or the whole page for a plain form)
and as a plain POST (the whole page, never a bare error page). The inventory at the end fails
when a POST route or a form appears that is in no table and not named as having nothing to type.
The lead page's and the agency's forms are in tests/screens/test_forms_in_place.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from starlette.routing import Route

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from console.leads import surveys
from console.leads.surveys import SurveyLinks
from console.tasks import tasks
from console.tasks.task_links import TaskLinks
from models import (
    ApiToken,
    Business,
    Comment,
    Interaction,
    InteractionRating,
    Lead,
    Survey,
    Task,
    User,
)
from routes import routes
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_user, sign_in
from tests.screens import test_forms_in_place
from tests.screens.test_portal import SUNDAY_9, handled, world

NOON = SUNDAY_9 + timedelta(hours=3)  # 12:00 in Jerusalem
HTMX = {"HX-Request": "true"}
TEMPLATES = Path(__file__).parents[2] / "templates"


@dataclass(frozen=True)
class Refusal:
    """Who posts where, what, and what must come back (ids and typed text may hold {places})."""

    name: str
    who: str  # "owner", "admin", "secretary" or "nobody" (a signed link)
    path: str
    data: dict[str, str]
    status: int
    form: str  # the id of the form (or row) that comes back
    error: str  # the id of the message
    kept: list[str] = field(default_factory=list)
    whole_page: bool = False  # a plain form: htmx never posts it, the page comes back


TABLE = [
    Refusal(
        "a sign-in with a wrong password",
        "nobody",
        "/login",
        {"email": "michal@example.test", "password": "not-hers", "next": "/tasks"},
        401,
        "login",
        "login-error",
        ['value="michal@example.test"'],
        whole_page=True,
    ),
    Refusal(
        "business settings without a name",
        "admin",
        "/agency/businesses/{business}",
        {"name": " ", "timezone": "Asia/Jerusalem", "locale": "he"},
        422,
        "business-settings",
        "business-name-error",
    ),
    Refusal(
        "a ring of 999 seconds",
        "admin",
        "/agency/businesses/{business}/calls",
        {"ring_seconds": "999", "wait_limit_seconds": "60", "wrap_up_seconds": "30"}
        | {"service_level_seconds": "20"},
        422,
        "calls",
        "calls-ring_seconds-error",
        ['value="999"'],
    ),
    Refusal(
        "an outcome moving leads to a stage that does not exist",
        "admin",
        "/agency/businesses/{business}/outcomes",
        {"answered": "nowhere", "booked_meeting": "meeting"},
        422,
        "outcomes",
        "outcomes-answered-error",
        ['<option value="meeting" selected>'],
    ),
    Refusal(
        "a plan whose price per minute has three decimals",
        "admin",
        "/agency/businesses/{business}/plan",
        {"monthly_fee": "2,500", "included_calls": "100", "included_minutes": "300"}
        | {"included_messages": "200", "call_price": "5", "minute_price": "1.255"}
        | {"message_price": "0.35"},
        422,
        "plan",
        "plan-minute_price-error",
        ['value="1.255"', 'value="2,500"'],
    ),
    Refusal(
        "an owner's booking with a phone that is no number",
        "owner",
        "/portal/appointments",
        {"business_id": "{business}", "phone": "12", "name": "דנה", "day": "2026-11-23"}
        | {"start": "10:00", "minutes": "30", "title": "בדיקה"},
        422,
        "book",
        "book-phone-error",
        ['value="12"', 'value="10:00"', 'value="בדיקה"'],
    ),
    Refusal(
        "an overflow action that does not exist",
        "admin",
        "/agency/businesses/{business}/overflow",
        {"waiting": "teleport", "closed": "", "holiday": ""},
        422,
        "overflow",
        "overflow-waiting-error",
    ),
    Refusal(
        "recording the calls with nowhere to keep them",
        "admin",
        "/agency/businesses/{business}/recording",
        {"record_calls": "on"},
        422,
        "recording",
        "recording-record_calls-error",
        ['name="record_calls" value="on" checked'],
    ),
    Refusal(
        "a webhook to a private address",
        "admin",
        "/agency/webhooks",
        {"url": "http://127.0.0.1/hook", "events": "task.done", "business_id": ""},
        422,
        "new-webhook",
        "new-webhook-url-error",
        ['value="http://127.0.0.1/hook"'],
    ),
    Refusal(
        "an on-call rota answered within no minutes",
        "admin",
        "/agency/businesses/{business}/on-call",
        {"ack_minutes": "עשר", "holidays": "", "eves": ""},
        422,
        "rota",
        "rota-ack_minutes-error",
        ['value="עשר"'],
    ),
    Refusal(
        "his quiet hours from 25:00",
        "owner",
        "/portal/businesses/{business}/notices",
        {"calls": "every", "quiet_from": "25:00", "quiet_to": "07:00", "digest_hour": "7"},
        422,
        "notices",
        "notices-quiet_from-error",
        ['value="25:00"'],
    ),
    Refusal(
        "the business's digest at hour 24",
        "admin",
        "/agency/businesses/{business}/notices",
        {"calls": "every", "digest_hour": "24"},
        422,
        "notices",
        "notices-digest_hour-error",
        ['value="24"'],
    ),
    Refusal(
        "his script without a greeting",
        "owner",
        "/portal/businesses/{business}/script",
        {"greeting": "", "questions": "* מה הכתובת? | text", "action": "save"},
        422,
        "script-form",
        "script-greeting-error",
        ["* מה הכתובת? | text</textarea>"],
        whole_page=True,
    ),
    Refusal(
        "a new call with a phone that is no number",
        "secretary",
        "/leads",
        {"business_id": "{business}", "phone": "054-23", "name": "דנה", "channel": "phone"},
        422,
        "new-call-form",
        "new-call-phone-error",
        ['value="054-23"', 'value="דנה"'],
    ),
    Refusal(
        "his status ending in the past",
        "owner",
        "/portal/availability",
        {"kind": "vacation", "until": "2026-11-01T10:00", "note": "באילת"},
        422,
        "availability-form",
        "availability-until-error",
        ['value="2026-11-01T10:00"', 'value="באילת"', 'value="vacation" checked'],
    ),
    Refusal(
        "his week with a window that ends before it starts",
        "owner",
        "/portal/businesses/{business}/hours",
        {"timezone": "Asia/Jerusalem", "mon_start": "18:00", "mon_end": "09:00"},
        422,
        "week",
        "week-mon-error",
        ['value="18:00"', 'value="09:00"'],
    ),
    Refusal(
        "his exception on a date that is none",
        "owner",
        "/portal/businesses/{business}/hours/exceptions",
        {"date": "2026-13-40", "kind": "special", "special_start": "10:00", "special_end": "12:00"},
        422,
        "add-exception",
        "add-exception-date-error",
        ['value="2026-13-40"', 'value="10:00"', 'value="special" checked'],
    ),
    Refusal(
        "a rating without stars",
        "owner",
        "/portal/interactions/{call}/rating",
        {"stars": "", "comment": "ענתה מהר"},
        422,
        "rating-{call}",
        "rating-{call}-stars-error",
        ['value="ענתה מהר"'],
    ),
    Refusal(
        "an empty comment on his task",
        "owner",
        "/portal/tasks/{task}/comments",
        {"body": " ", "request_key": "k1"},
        422,
        "owner-task-{task}",
        "owner-task-{task}-body-error",
    ),
    Refusal(
        "his task done after it was cancelled",
        "owner",
        "/portal/tasks/{cancelled}/done",
        {},
        409,
        "owner-task-{cancelled}",
        "owner-task-{cancelled}-error",
    ),
    Refusal(
        "an empty comment on a lead, from his portal",
        "owner",
        "/leads/{lead}/comments",
        {"body": "", "next": "/portal/leads/{lead}"},
        422,
        "comment-form-{lead}",
        "comment-body-error",
        ['name="next" value="/portal/leads/{lead}"'],
    ),
    Refusal(
        "a task seen after it was cancelled",
        "owner",
        "/tasks/{cancelled}/ack",
        {},
        409,
        "task-{cancelled}",
        "task-{cancelled}-error",
    ),
    Refusal(
        "a task cancelled after it was done",
        "secretary",
        "/tasks/{done}/status",
        {"status": "cancelled", "next": "/tasks"},
        409,
        "task-{done}",
        "task-{done}-error",
    ),
    Refusal(
        "the agency's week in a time zone that does not exist",
        "admin",
        "/agency/businesses/{business}/hours",
        {"timezone": "Mars/Olympus", "sun_start": "08:00", "sun_end": "17:00"},
        422,
        "week",
        "week-timezone-error",
        ['value="Mars/Olympus"', 'value="08:00"', 'value="17:00"'],
    ),
    Refusal(
        "special hours with a start and no end",
        "admin",
        "/agency/businesses/{business}/hours/exceptions",
        {"date": "2026-12-01", "kind": "special", "special_start": "10:00", "special_end": ""},
        422,
        "add-exception",
        "add-exception-special_hours-error",
        ['value="2026-12-01"', 'value="10:00"'],
    ),
    Refusal(
        "an admin changing her own role",
        "admin",
        "/agency/users/{admin}/role",
        {"role": "secretary"},
        422,
        "user-{admin}",
        "user-{admin}-error",
        ['<option value="admin" selected>'],
        whole_page=True,
    ),
    Refusal(
        "an admin deactivating herself",
        "admin",
        "/agency/users/{admin}/active",
        {"active": "0"},
        422,
        "user-{admin}",
        "user-{admin}-error",
        whole_page=True,
    ),
    Refusal(
        "a deactivated secretary assigned",
        "admin",
        "/agency/businesses/{business}/assignments",
        {"user_id": "{gone}", "backup": "1"},
        422,
        "assign",
        "assign-user_id-error",
        ['value="{gone}" selected', 'name="backup" value="1" checked'],
        whole_page=True,
    ),
    Refusal(
        "a retention that is no number",
        "admin",
        "/contacts/settings/{business}/retention",
        {"retention_days": "לתמיד"},
        422,
        "retention-{business}",
        "retention-{business}-days-error",
        ['value="לתמיד"'],
        whole_page=True,
    ),
    Refusal(
        "an erasure not confirmed",
        "secretary",
        "/contacts/{contact}/erase",
        {},
        422,
        "erase",
        "erase-confirm-error",
        whole_page=True,
    ),
    Refusal(
        "an API token without a name",
        "secretary",
        "/settings/tokens",
        {"name": "   "},
        422,
        "token-form",
        "token-name-error",
    ),
    Refusal(
        "a survey without stars",
        "nobody",
        "/survey/{survey}",
        {"stars": "", "recommend": "yes", "improve": "לענות מהר יותר"},
        422,
        "survey",
        "survey-stars-error",
        [">לענות מהר יותר</textarea>", 'value="yes" required checked'],
        whole_page=True,
    ),
    Refusal(
        "a task's link after it was cancelled",
        "nobody",
        "/ack/{ack}",
        {},
        409,
        "main",
        "ack-error",
        whole_page=True,
    ),
    Refusal(
        "a new password too short",
        "nobody",
        "/invite/{invite}",
        {"password": "short", "repeated": "short"},
        422,
        "set-password",
        "set-password-password-error",
        whole_page=True,
    ),
]

# The POST routes that take nothing typed (a button, a choice from a list of what exists, a
# download): what can refuse them is "not found" or "already done", said on the page they were
# on. Each with why it has no place in a table; a new route must join a table or this list.
NOTHING_TO_TYPE = {
    "/logout": "a button",
    "/locale": "a button per language",
    "/login/code": "the second step re-renders itself (tests/people/test_two_factor*)",
    "/leads/{lead_id}/calls": "a button and a kind; a held lead is refused in place (lead page)",
    "/leads/{lead_id}/claim": "a button; the loser reads who won in place (test_browser_queue)",
    "/leads/{lead_id}/release": "a button",
    "/leads/{lead_id}/reassign": "a choice of the business's secretaries",
    "/leads/{lead_id}/takeover": "a button beside a refusal",
    "/leads/{lead_id}/takeover/answer": "give or keep",
    "/appointments/{appointment_id}/cancel": "a button",
    "/portal/appointments/{appointment_id}/cancel": "a button",
    "/meeting/{token}": "a contact's button on his meeting's signed link",
    "/calls/{call_id}/autosave": "sent by the page while she types, never refused for its text",
    "/calls/{call_id}/wrap-up": "answers kept by autosave; refused wrap-up is the lead page",
    "/alerts/{alert_id}/ack": "a button",
    "/agent/state": "a choice of states, refused in place by routes/agents.py",
    "/portal/tasks/{task_id}/ack": "a button; its twin 'done' is in the table",
    "/portal/businesses/{business_id}/calendar-feed": "a button",
    "/portal/businesses/{business_id}/hours/exceptions/remove": "a button per exception",
    "/agency/businesses/{business_id}/hours/exceptions/remove": "a button per exception",
    "/contacts/import/report.csv": "a download",
    "/contacts/classify": "a button",
    "/contacts/{contact_id}/export": "a download",
    "/settings/tokens/{token_id}/revoke": "a button",
    "/settings/two-factor/start": "a button",
    "/agency/users/{user_id}/addressed-as": "a choice of three",
    "/agency/users/{user_id}/password": "a button",
    "/agency/users/{user_id}/sessions/end": "a button",
    "/agency/users/{user_id}/two-factor/reset": "a button",
    "/agency/two-factor": "a switch",
    "/agency/businesses/{business_id}/active": "a button",
    "/agency/businesses/{business_id}/assignments/{user_id}/remove": "a button",
    "/agency/businesses/{business_id}/people/{user_id}/remove": "a button",
    "/agency/businesses/{business_id}/script/owner-publish": "a switch",
    "/agency/businesses/{business_id}/replies/{reply_id}/remove": "a button",
    "/agency/businesses/{business_id}/channels/key": "a button",
    "/agency/businesses/{business_id}/lines/{line_id}/remove": "a button",
    "/settings/addressing": "a choice of three",
    "/portal/notifications": "a choice of what is pushed (tests/channels/test_push.py)",
    "/portal/notifications/test": "a button",
    "/portal/businesses/{business_id}/notices/resend": "a button",
    "/agency/businesses/{business_id}/notices/resend": "a button",
    "/agency/notifications/{notification_id}/retry": "a button",
    "/ack/call/{token}": "a button behind a signed link",
}
# Forms that re-render in place, tested where their screens are.
TESTED_ELSEWHERE = {
    "/portal/appointments/{appointment_id}/move": "a taken slot, in place: "
    "tests/calendar/test_owner_appointments.py",
    "/agency/requests/{request_id}": "a note too long, in place: "
    "tests/agency/test_change_requests.py",
    "/agency/businesses/{business_id}/people": "who and which role, in place: "
    "tests/agency/test_business_people.py",
    "/contacts/import": "each step again with the reason: tests/contacts/test_import_bounds.py",
    "/settings/two-factor/confirm": "a wrong code, its QR code again: tests/people/test_two_factor",
    "/settings/two-factor/disable": "a wrong code, in place: tests/people/test_two_factor",
    # JSON from the portal's script, no form: a bad subscription is 422 naming its field
    "/portal/push/subscriptions": "tests/channels/test_push.py (every bad subscription)",
    "/portal/push/subscriptions/remove": "tests/channels/test_push.py",
    "/phone/transfer/{sip_call_id}": "a number off the list, in place (needs her call going on):"
    " tests/voice/test_transfer.py",
}
# Forms being built as this was written, whose refusals belong in a table above.
NOT_YET_IN_A_TABLE = {
    "/ack/on-call/{token}": "an on-call page's signed link",
    "/agency/webhooks/{endpoint_id}/resume": "a button",
    "/agency/webhooks/{endpoint_id}/delete": "a button",
    "/agency/webhooks/deliveries/{delivery_id}/replay": "a button",
}
MACHINES = ("/intake/", "/sip/", "/api/")


@pytest.fixture
async def web(db: Database) -> AsyncIterator[object]:
    settings = Settings(database_url=db.url, secret_key=SECRET)
    app = create_app(settings, db=db, clock=MovableClock(NOON), run_jobs=False)
    async with app.router.lifespan_context(app):
        yield app


async def count_everything(db: Database) -> tuple[object, ...]:
    models = (Task, Comment, InteractionRating, Survey, ApiToken, Business, User, Interaction)
    async with db.transaction(write=False) as session:
        found = [await session.scalar(select(func.count()).select_from(m)) for m in models]
        done = await session.scalar(select(func.count()).where(Task.status == "done"))
        hours = await session.scalar(select(Business.weekly_hours).limit(1))
        away = await session.scalar(select(func.count()).where(User.away_kind.is_not(None)))
    return (*[n or 0 for n in found], done or 0, str(hours), away or 0)


def message_of(html: str, error: str) -> str:
    """The text of the element with this id, which must be an alert."""
    found = re.search(rf'<[^>]*\bid="{error}"[^>]*>\s*(?:<span>)?([^<]+)<', html)
    assert found, (error, re.findall(r'role="alert"[^<]*<', html) or html[:300])
    tag = html[html.rfind("<", 0, found.start() + 1) : found.start(1)]
    assert 'role="alert"' in tag and "alert" in tag, tag
    return found.group(1).strip()


async def test_every_other_refused_form_comes_back_in_place(web: object, db: Database) -> None:
    w = await world(db)
    call = await handled(db, w.michal, w.a, phone="054-2345678", name="יעל", at=SUNDAY_9)
    async with db.transaction() as session:
        made = []
        for title in ("להתקשר ליעל", "לשלוח הצעה"):
            handoff = tasks.HandOff(assignee_id=str(w.avi.id), title=title, due="2026-11-23T12:00")
            made.append(await tasks.hand_off(session, w.michal, call.lead_id, handoff, now=NOON))
        cancelled, done = made
        await tasks.set_task_status(session, w.michal, cancelled.id, "cancelled", now=NOON)
        await tasks.set_task_status(session, w.michal, done.id, "done", now=NOON)
        gone = await make_user(session, "secretary", name="נועה שעזבה")
        gone.active = False
        lead = await session.get_one(Lead, call.lead_id)
        survey = await surveys.start_survey(session, lead, links=None, now=NOON)
    assert survey is not None
    places = {
        "business": str(w.a.id),
        "call": str(call.id),
        "lead": str(call.lead_id),
        "task": str(done.id),
        "cancelled": str(cancelled.id),
        "done": str(done.id),
        "contact": str(lead.contact_id),
        "survey": SurveyLinks(SECRET, None).token(survey.id, now=NOON),
        "ack": TaskLinks(SECRET, None).token(cancelled.id, w.avi.id, "done", now=NOON),
        "invite": "",
        "admin": str(w.admin.id),
        "gone": str(gone.id),
    }
    transport = httpx.ASGITransport(app=web)  # type: ignore[arg-type]
    clients: dict[str, httpx.AsyncClient] = {}
    tokens: dict[str, str] = {}
    for role, user, page in (
        ("owner", w.avi, "/portal"),
        ("secretary", w.michal, "/tasks"),
        ("admin", w.admin, "/agency/users"),
        ("nobody", None, "/login"),
    ):
        clients[role] = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        if user is not None:
            await sign_in(clients[role], user.email)
        tokens[role] = await csrf_token(clients[role], page)
    reset = await clients["admin"].post(
        f"/agency/users/{w.rina.id}/password", data={"csrf_token": tokens["admin"]}
    )
    places["invite"] = re.search(r"/invite/([^\"<\s]+)", reset.text).group(1)  # type: ignore[union-attr]
    before = await count_everything(db)

    for case in TABLE:
        for htmx in (True, False):
            answer = await clients[case.who].post(
                case.path.format(**places),
                data={"csrf_token": tokens[case.who]}
                | {name: value.format(**places) for name, value in case.data.items()},
                headers=HTMX if htmx else {},
            )
            what = (case.name, "htmx" if htmx else "plain")
            assert answer.status_code == case.status, (*what, answer.text[:800])
            html = answer.text
            assert ("<html" in html) == (case.whole_page or not htmx), what
            assert f'id="{case.form.format(**places)}"' in html, what
            error = case.error.format(**places)
            assert message_of(html, error), what
            assert "back to start" not in html.lower(), what
            for typed in case.kept:
                assert typed.format(**places) in html, (*what, typed)
    assert await count_everything(db) == before  # none of them changed anything
    for client in clients.values():
        await client.aclose()


def test_every_post_route_and_form_is_accounted_for() -> None:
    """A new form is noticed: its route must be in a refusal table, tested elsewhere, or named
    as taking nothing typed; and every form in the templates posts to a route."""
    tabled = {case.path for case in TABLE} | {case.path for case in test_forms_in_place.TABLE}
    pattern = re.compile(r"\{[a-z_]+\}")
    known = {pattern.sub("{}", path) for path in tabled}
    known |= {
        pattern.sub("{}", path)
        for path in (*NOTHING_TO_TYPE, *TESTED_ELSEWHERE, *NOT_YET_IN_A_TABLE)
    }
    posts = [
        route.path
        for route in routes
        if isinstance(route, Route)
        and "POST" in (route.methods or ())
        and not route.path.startswith(MACHINES)
    ]
    missing = [path for path in posts if pattern.sub("{}", path) not in known]
    assert not missing, f"POST routes in no table and not named as taking nothing: {missing}"

    route_shapes = {pattern.sub("{}", path) for path in posts}
    action = re.compile(r'<form\b[^>]*\bmethod="post"[^>]*\baction="([^"]+)"', re.I)
    # A button that posts its form elsewhere names the route itself (the inbox's one claim form).
    button = re.compile(r'<button\b[^>]*\bformaction="([^"]+)"', re.I)
    carriers = {("index.html", "/inbox")}  # the claim form: only its buttons' formaction posts
    dynamic = re.compile(r"\{\{[^}]*\}\}")
    unknown = []
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for target in [*action.findall(text), *button.findall(text)]:
            if (template.name, target) in carriers:
                continue
            shape = dynamic.sub("{}", target.split("?")[0].split("#")[0])
            if shape in ("{}", "{}/exceptions", "{}/exceptions/remove", "{}/resend"):
                continue  # its own address (surveys, links, either home's hours and notices)
            if shape not in route_shapes:
                unknown.append((template.name, target))
    assert not unknown, unknown
