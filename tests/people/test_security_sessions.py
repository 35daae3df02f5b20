"""Security: sessions and live sockets end when the agency says so, and a socket opens only from
this site with a live session. Served by uvicorn in the test's loop (tests/served.py), on SQLite
and PostgreSQL, with the socket's own re-check slowed to a minute so what closes it is the
admin's action, not the backstop.

Covered elsewhere, not repeated: logout closing the session's open socket and killing a copied
cookie (test_live.py::test_logout_closes_the_open_socket_and_the_cookie_is_dead,
test_auth.py::test_session_rotates_on_login_and_ends_on_logout); a user deactivated straight in
the database (test_live.py::test_a_deactivated_users_socket_closes_by_itself,
test_auth.py::test_deactivation_ends_the_users_sessions); a socket without a session, from
another site, or with a forged cookie
(test_live.py::test_the_handshake_is_refused_without_a_session_or_from_another_site); idle
and absolute expiry (test_auth.py::test_sessions_expire_when_idle_and_absolutely).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from websockets.exceptions import InvalidStatus

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from models import User, UserSession
from tests.conftest import SECRET
from tests.factories import make_business, make_user
from tests.served import Browser, close_code, served

HELLO = {"type": "hello", "page": "queue", "cursor": {}}


@pytest.fixture
async def app(db: Database) -> AsyncIterator[Starlette]:
    settings = Settings(database_url=db.url, secret_key=SECRET, live_revalidate_seconds=60)
    application = create_app(settings, db=db, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


async def people(db: Database) -> tuple[User, User]:
    async with db.transaction() as session:
        business = await make_business(session)
        return await make_user(session, "secretary", business), await make_user(session, "admin")


async def live_sessions(db: Database, user: User) -> int:
    async with db.transaction(write=False) as session:
        query = select(func.count()).select_from(UserSession)
        found = query.where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        return int(await session.scalar(found) or 0)


async def refused(browser: Browser, origin: str | None = "") -> int:
    with pytest.raises(InvalidStatus) as handshake:
        await browser.socket(HELLO, origin=origin)
    return handshake.value.response.status_code


async def test_a_deactivated_users_open_socket_and_session_end_at_once(
    app: Starlette, db: Database
) -> None:
    secretary, admin = await people(db)
    async with served(app) as url:
        dana = await Browser(url).sign_in(secretary.email, "/inbox")
        boss = await Browser(url).sign_in(admin.email, "/agency")
        ws = await dana.socket(HELLO)
        assert await close_code(ws, within=0.3) is None  # open and listening
        off = await boss.post(f"/agency/users/{secretary.id}/active", active="0")
        assert off.status_code == 303
        assert await close_code(ws, within=2) == 4401
        assert (await dana.http.get("/inbox")).status_code == 303  # sent to sign in
        assert await live_sessions(db, secretary) == 0
        assert await refused(dana) == 403
        await dana.close()
        await boss.close()


async def test_a_password_reset_ends_every_session_and_socket_of_the_user(
    app: Starlette, db: Database
) -> None:
    secretary, admin = await people(db)
    async with served(app) as url:
        laptop = await Browser(url).sign_in(secretary.email, "/inbox")
        phone = await Browser(url).sign_in(secretary.email, "/inbox")
        boss = await Browser(url).sign_in(admin.email, "/agency")
        sockets = [await laptop.socket(HELLO), await phone.socket(HELLO), await boss.socket(HELLO)]
        assert await live_sessions(db, secretary) == 2
        reset = await boss.post(f"/agency/users/{secretary.id}/password")
        assert reset.status_code == 200
        for ws in sockets[:2]:
            assert await close_code(ws, within=2) == 4401
        assert await close_code(sockets[2], within=0.3) is None  # the admin's own stays
        for device in (laptop, phone):
            assert (await device.http.get("/inbox")).status_code == 303
            assert await refused(device) == 403
        assert await live_sessions(db, secretary) == 0
        assert (await boss.http.get("/agency")).status_code == 200
        await sockets[2].close()
        for browser in (laptop, phone, boss):
            await browser.close()


async def test_a_socket_without_an_origin_or_with_a_lookalike_origin_is_refused(
    app: Starlette, db: Database
) -> None:
    secretary, _admin = await people(db)
    async with served(app) as url:
        dana = await Browser(url).sign_in(secretary.email, "/inbox")
        port = url.rsplit(":", 1)[1]
        for origin in (
            None,  # no Origin header at all
            "null",  # a sandboxed frame or a file: page
            f"http://127.0.0.1:{port}.evil.example",
            f"http://evil.example/127.0.0.1:{port}",
            f"http://127.0.0.1:{int(port) + 1}",  # another site on the same host
            f"http://user@127.0.0.1:{port}",
        ):
            assert await refused(dana, origin) == 403, origin
        ws = await dana.socket(HELLO)  # this site itself
        assert await close_code(ws, within=0.3) is None
        await ws.close()
        await dana.close()
