"""Signing in and out, sessions, throttling and CSRF, through HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select, update

from console.base.db import Database
from models import LoginFailure, User, UserSession
from tests.factories import PASSWORD, csrf_token, make_business, make_user, sign_in


async def count(db: Database, model: type) -> int:
    async with db.transaction(write=False) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_each_role_lands_on_its_home(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        business = await make_business(session)
        users = {
            "secretary": await make_user(session, "secretary", business),
            "owner": await make_user(session, "owner", business),
            "admin": await make_user(session, "admin"),
        }
    homes = {"secretary": "/inbox", "owner": "/portal", "admin": "/agency"}
    for role, user in users.items():
        client.cookies.clear()
        response = await sign_in(client, user.email.upper())  # e-mail is case-insensitive
        assert response.status_code == 303, response.text
        assert response.headers["location"] == homes[role]
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        page = await client.get(homes[role])
        assert page.status_code == 200
        assert user.name in page.text
        assert (await client.get("/")).headers["location"] == homes[role]


async def test_wrong_password_unknown_email_and_inactive_user_get_401(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
        inactive = await make_user(session, "admin")
        inactive.active = False
    for email, password in [
        (user.email, "not-the-password"),
        ("nobody@example.test", PASSWORD),
        (inactive.email, PASSWORD),
    ]:
        client.cookies.clear()
        response = await sign_in(client, email, password)
        assert response.status_code == 401
        assert "Wrong e-mail or password" in response.text or "שגויים" in response.text
        assert "mazkira_session" not in response.headers.get("set-cookie", "")
    assert await count(db, UserSession) == 0
    assert await count(db, LoginFailure) == 3


async def test_malformed_login_form_is_422_and_writes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    token = await csrf_token(client)
    response = await client.post("/login", data={"csrf_token": token, "email": "x@y.test"})
    assert response.status_code == 422
    assert await count(db, LoginFailure) == 0


async def test_csrf_missing_or_wrong_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    await client.get("/login")
    missing = await client.post("/login", data={"email": user.email, "password": PASSWORD})
    wrong = await client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"}
    )
    header_wrong = await client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD},
        headers={"X-CSRF-Token": "forged"},
    )
    for response in (missing, wrong, header_wrong):
        assert response.status_code == 403
        assert "Reload the page" in response.text or "טענו" in response.text
    assert await count(db, UserSession) == 0
    # Signed in, the session's own token is needed: the pre-login one no longer works.
    pre_login_token = await csrf_token(client)
    await sign_in(client, user.email)
    refused = await client.post("/logout", data={"csrf_token": pre_login_token})
    assert refused.status_code == 403
    page = await client.get("/agency")
    assert page.status_code == 200
    token = await csrf_token(client, "/agency")
    by_header = await client.post("/logout", headers={"X-CSRF-Token": token})
    assert by_header.status_code == 303


async def test_no_state_change_by_get(client: httpx.AsyncClient) -> None:
    for path in ("/logout", "/locale"):
        assert (await client.get(path)).status_code == 405


async def test_session_rotates_on_login_and_ends_on_logout(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    await sign_in(client, user.email)
    first = client.cookies["mazkira_session"]
    await sign_in(client, user.email)
    second = client.cookies["mazkira_session"]
    assert first != second
    async with db.transaction(write=False) as session:
        live = await session.scalar(
            select(func.count()).select_from(UserSession).where(UserSession.ended_at.is_(None))
        )
    assert live == 1  # signing in again ended the session it replaced

    token = await csrf_token(client, "/agency")
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    client.cookies.set("mazkira_session", second)  # an old cookie replayed after logout
    assert (await client.get("/agency")).status_code == 303


async def test_sessions_expire_when_idle_and_absolutely(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    await sign_in(client, user.email)
    assert (await client.get("/agency")).status_code == 200
    long_ago = datetime.now(UTC) - timedelta(hours=9)
    async with db.transaction() as session:
        await session.execute(update(UserSession).values(last_seen_at=long_ago))
    assert (await client.get("/agency")).status_code == 303  # idle for longer than 8 hours

    await sign_in(client, user.email)
    async with db.transaction() as session:
        await session.execute(
            update(UserSession)
            .where(UserSession.ended_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await client.get("/agency")).status_code == 303  # past its absolute lifetime


async def test_deactivation_ends_the_users_sessions(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    await sign_in(client, user.email)
    assert (await client.get("/agency")).status_code == 200
    async with db.transaction() as session:
        await session.execute(update(User).where(User.id == user.id).values(active=False))
    assert (await client.get("/agency")).status_code == 303


async def test_failed_logins_are_throttled_per_account_then_per_address(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    for _ in range(5):
        assert (await sign_in(client, user.email, "wrong-password")).status_code == 401
    throttled = await sign_in(client, user.email, PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 300
    # The real user is held back for minutes, not locked out: once the window passes, in.
    async with db.transaction() as session:
        await session.execute(
            update(LoginFailure).values(at=datetime.now(UTC) - timedelta(minutes=6))
        )
    assert (await sign_in(client, user.email, PASSWORD)).status_code == 303

    # One address trying many accounts is held back too.
    client.cookies.clear()
    for n in range(30):
        response = await sign_in(client, f"guess{n}@example.test", "whatever-password")
        assert response.status_code == 401
    assert (await sign_in(client, "guess-more@example.test", "whatever")).status_code == 429
