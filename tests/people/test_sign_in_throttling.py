"""Sign-in throttling delays, never locks out: failures hold back the address they came from
(per account from that address, and per address), so an attacker guessing a user's password
keeps being refused while the user, from anywhere else, signs in at once. Through HTTP behind a
trusted proxy (the client address from X-Forwarded-For), with the app's clock moved instead of
sleeping, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from models import LoginFailure
from tests.conftest import SECRET
from tests.factories import PASSWORD, MovableClock, make_user, sign_in

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
ATTACKER = "198.51.100.66"
HOME = "203.0.113.7"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def behind_proxy(db: Database, clock: MovableClock) -> AsyncIterator[Starlette]:
    """The console behind a proxy on 10.0.0.0/8 (TRUSTED_PROXIES), with the default limits."""
    settings = Settings(
        database_url=db.url, secret_key=SECRET, trusted_proxies=(ip_network("10.0.0.0/8"),)
    )
    application = create_app(settings, db=db, run_jobs=False, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


def through_proxy(app: Starlette, address: str) -> httpx.AsyncClient:
    """A browser at `address`, seen by the console through the proxy at 10.0.0.2."""
    transport = httpx.ASGITransport(app=app, client=("10.0.0.2", 40000))
    return httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"X-Forwarded-For": address}
    )


async def test_an_attacker_guessing_a_password_is_delayed_and_its_owner_gets_in_from_elsewhere(
    behind_proxy: Starlette, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "admin")
    attacker = through_proxy(behind_proxy, ATTACKER)
    owner = through_proxy(behind_proxy, HOME)
    answers: list[int] = []
    owner_in = 0
    for minute in range(44):  # two wrong guesses a minute, for 44 minutes
        for half in (0, 30):
            clock.moment = NOW + timedelta(minutes=minute, seconds=half)
            guess = await sign_in(attacker, user.email, f"guess-{minute}-{half}")
            answers.append(guess.status_code)
            if guess.status_code == 429:
                assert 0 < int(guess.headers["retry-after"]) <= 5 * 60
                assert "יותר מדי ניסיונות כניסה כושלים" in guess.text  # and says why
        # Meanwhile, the real user from her own address: in at once, every time.
        owner.cookies.clear()
        signed = await sign_in(owner, user.email)
        owner_in += signed.status_code == 303 and signed.headers["location"] == "/agency"
    assert owner_in == 44
    assert answers[:5] == [401] * 5 and answers[5] == 429
    assert answers.count(429) > 40  # the attacker mostly waits
    assert set(answers) == {401, 429}
    # Even the right password from the attacker's address waits: the address is held, not her.
    attacker.cookies.clear()
    held = await sign_in(attacker, user.email, PASSWORD)
    assert held.status_code == 429 and "mazkira_session" not in held.headers.get("set-cookie", "")
    # Failures are kept only for the address they came from; hers left none.
    async with db.transaction(write=False) as session:
        assert set(await session.scalars(select(LoginFailure.address))) == {ATTACKER}
    await attacker.aclose()
    await owner.aclose()


async def test_one_address_guessing_many_accounts_is_held_back_and_others_are_not(
    behind_proxy: Starlette, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "secretary")
    guesser = through_proxy(behind_proxy, ATTACKER)
    for n in range(30):  # one guess for each of 30 accounts: under the per-account limit
        assert (await sign_in(guesser, f"guess{n}@example.test", "pw-guess")).status_code == 401
    refused = await sign_in(guesser, user.email, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    office = through_proxy(behind_proxy, HOME)
    assert (await sign_in(office, user.email)).status_code == 303
    # The address's window (15 minutes) passes: it may try again.
    clock.moment = NOW + timedelta(minutes=16)
    guesser.cookies.clear()
    assert (await sign_in(guesser, user.email, PASSWORD)).status_code == 303
    await guesser.aclose()
    await office.aclose()


async def test_her_own_typos_hold_back_only_her_address_and_a_sign_in_forgives_them(
    behind_proxy: Starlette, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        user = await make_user(session, "owner")
    laptop = through_proxy(behind_proxy, HOME)
    for _ in range(4):
        assert (await sign_in(laptop, user.email, "almost-right")).status_code == 401
    assert (await sign_in(laptop, user.email)).status_code == 303
    async with db.transaction(write=False) as session:
        assert list(await session.scalars(select(LoginFailure))) == []
