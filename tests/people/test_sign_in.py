"""`auth.sign_in`, the one service behind the login page: credentials, throttling, the new
session and the audit log; called directly, then through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from console.base.config import Settings
from console.base.db import Database
from console.base.errors import Invalid, Throttled
from console.people import auth
from models import AuditEvent, LoginFailure, UserSession
from tests.factories import PASSWORD, csrf_token, make_user, sign_in

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
BROWSER = auth.Client("203.0.113.7", "Firefox/140")


async def attempt(
    db: Database,
    settings: Settings,
    email: str,
    password: str = PASSWORD,
    *,
    client: auth.Client = BROWSER,
    now: datetime = NOW,
) -> auth.SignedIn | None:
    """One sign-in in its own transaction, committed as the login page commits it."""
    async with db.transaction() as session:
        signed = await auth.sign_in(
            session, settings, email=email, password=password, client=client, now=now
        )
    assert not isinstance(signed, auth.SecondStep)  # nobody here has two-factor sign-in
    return signed


async def audited(db: Database) -> list[AuditEvent]:
    async with db.transaction(write=False) as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.id))).all())


async def count(db: Database, model: type[object]) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_sign_in_starts_a_session_ends_the_old_one_and_is_audited(
    db: Database, settings: Settings
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
        before = await auth.start_session(session, settings, user, now=NOW - timedelta(hours=1))
    client = auth.Client("203.0.113.7", "Firefox/140", session_id=before.record.id)

    signed = await attempt(db, settings, f"  {user.email.upper()} ", client=client)

    assert signed is not None and signed.user.id == user.id
    async with db.transaction(write=False) as session:
        new = await session.get_one(UserSession, signed.started.record.id)
        old = await session.get_one(UserSession, before.record.id)
    assert new.id == auth.token_id(signed.started.token) and new.ended_at is None
    assert (new.address, new.user_agent, new.created_at) == ("203.0.113.7", "Firefox/140", NOW)
    assert old.ended_at == NOW  # sessions rotate on sign-in
    [event] = await audited(db)
    assert (event.action, event.actor_id, event.actor_email) == ("sign_in", user.id, user.email)
    assert (event.address, event.at, event.subject_type) == ("203.0.113.7", NOW, "user")
    assert event.subject_id == str(user.id) and event.details == {}


async def test_wrong_credentials_answer_none_and_are_counted_and_audited(
    db: Database, settings: Settings
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "secretary")
        inactive = await make_user(session, "secretary")
        inactive.active = False
    for email, password in [
        (f" {user.email.upper()}", "not-the-password"),
        ("Nobody@Example.test", PASSWORD),
        (inactive.email, PASSWORD),
    ]:
        assert await attempt(db, settings, email, password) is None
    assert await count(db, UserSession) == 0
    assert await count(db, LoginFailure) == 3
    events = await audited(db)
    assert [e.action for e in events] == ["sign_in.failed"] * 3
    assert [e.actor_email for e in events] == [user.email, "nobody@example.test", inactive.email]
    assert all(e.actor_id is None and e.address == "203.0.113.7" for e in events)
    assert all(e.subject_type == "" and e.details == {} for e in events)  # never the password


@pytest.mark.parametrize(("email", "password"), [("", PASSWORD), ("  ", PASSWORD), ("a@b.c", "")])
async def test_a_blank_field_is_refused_and_writes_nothing(
    db: Database, settings: Settings, email: str, password: str
) -> None:
    with pytest.raises(Invalid) as refused:
        await attempt(db, settings, email, password)
    assert refused.value.message == "Enter your e-mail and password."
    assert await count(db, LoginFailure) == 0 and await count(db, AuditEvent) == 0


async def test_throttled_per_account_then_per_address_and_nothing_written_meanwhile(
    db: Database, settings: Settings
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "owner")
    per_account = settings.login_attempts_per_account
    for n in range(per_account):
        moment = NOW + timedelta(seconds=n)
        assert await attempt(db, settings, user.email, "wrong-password", now=moment) is None
    with pytest.raises(Throttled) as held:  # even the right password waits
        await attempt(db, settings, user.email, now=NOW + timedelta(minutes=1))
    assert 0 < held.value.retry_after <= 5 * 60
    assert await count(db, LoginFailure) == per_account
    assert [e.action for e in await audited(db)] == ["sign_in.failed"] * per_account
    # The real user is held back for minutes, not locked out.
    signed = await attempt(db, settings, user.email, now=NOW + timedelta(minutes=6))
    assert signed is not None and signed.user.id == user.id
    assert await count(db, LoginFailure) == 0  # a sign-in clears its account's failures

    # One address trying many accounts is held back too, for longer.
    guesser = auth.Client("198.51.100.9")
    later = NOW + timedelta(minutes=10)
    for n in range(settings.login_attempts_per_address):
        guess = await attempt(db, settings, f"guess{n}@x.test", "pw", client=guesser, now=later)
        assert guess is None
    with pytest.raises(Throttled):
        await attempt(db, settings, user.email, client=guesser, now=later)
    assert await attempt(db, settings, user.email, now=later) is not None  # elsewhere: in


async def test_the_login_page_signs_in_through_the_service(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    blank = await client.post("/login", data={"csrf_token": await csrf_token(client)})
    assert blank.status_code == 422 and "הזינו דוא״ל וסיסמה" in blank.text
    wrong = await sign_in(client, user.email, "not-the-password")
    assert wrong.status_code == 401 and "הדוא״ל או הסיסמה שגויים" in wrong.text
    assert "mazkira_session" not in wrong.headers.get("set-cookie", "")
    signed = await sign_in(client, user.email)
    assert signed.status_code == 303 and signed.headers["location"] == "/agency"
    assert "mazkira_session=" in signed.headers["set-cookie"]
    events = await audited(db)
    assert [(e.action, e.actor_id) for e in events] == [
        ("sign_in.failed", None),
        ("sign_in", user.id),
    ]
    assert all(e.address for e in events)
    async with db.transaction(write=False) as session:
        [started] = (await session.scalars(select(UserSession))).all()
    assert started.user_id == user.id
