"""Two-factor sign-in through HTTP, with real codes: the tests read the secret off the
enrolment page (and check that its QR code carries the otpauth URI for it), compute the codes
with pyotp at the app's clock, and walk the whole story: the agency requires it, a secretary is
led to enrol right after her password, signs in with codes (never the same one twice), with a
recovery code (once), is throttled after wrong codes; an owner turns it on and off himself; an
admin turns it off for someone who lost her phone. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
import segno
from sqlalchemy import select
from starlette.applications import Starlette

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from models import AuditEvent, LoginFailure, RecoveryCode
from tests.conftest import SECRET
from tests.factories import MovableClock, csrf_token, make_user, sign_in

# The start of a TOTP step (and a few seconds), so moving 30 s is always the next code.
_now = datetime.now(UTC).replace(microsecond=0)
NOW = _now - timedelta(seconds=_now.timestamp() % 30) + timedelta(seconds=3)
TOKEN_INPUT = re.compile(r'name="token" value="([^"]+)"')
SECRET_SHOWN = re.compile(r'<code class="secret totp-secret" dir="ltr">([A-Z2-7 ]+)</code>')
QR_PATH = re.compile(r'class="qrline" stroke="#000" d="([^"]+)"')
CODES_SHOWN = re.compile(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>")


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(NOW)


@pytest.fixture
async def console(db: Database, clock: MovableClock) -> AsyncIterator[Starlette]:
    application = create_app(
        Settings(database_url=db.url, secret_key=SECRET), db=db, run_jobs=False, clock=clock
    )
    async with application.router.lifespan_context(application):
        yield application


def browser(app: Starlette, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def send_code(client: httpx.AsyncClient, page: httpx.Response, code: str) -> httpx.Response:
    """Post `code` on the second step `page` showed (its token, its CSRF token)."""
    token = TOKEN_INPUT.search(page.text)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token and csrf, page.text
    form = {"token": token.group(1), "code": code, "csrf_token": csrf.group(1)}
    return await client.post("/login/code", data=form)


def secret_on(page: httpx.Response, email: str) -> str:
    """The secret the enrolment page shows, checked against what its QR code encodes."""
    shown = SECRET_SHOWN.search(page.text)
    assert shown, page.text
    secret = shown.group(1).replace(" ", "")
    uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="Mazkira")
    assert pyotp.parse_uri(uri).secret == secret
    expected = segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")
    drawn = QR_PATH.search(page.text)
    assert drawn and drawn.group(1) in expected  # the QR code is this otpauth URI
    return secret


async def actions(db: Database) -> list[str]:
    async with db.transaction(write=False) as session:
        return list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


async def sign_out(client: httpx.AsyncClient) -> None:
    await client.post("/logout", data={"csrf_token": await csrf_token(client, "/")})
    client.cookies.clear()


async def test_required_enrolment_then_codes_recovery_replay_and_throttling(
    console: Starlette, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary")
        owner = await make_user(session, "owner")

    # The admin makes it a rule for admins and secretaries.
    office = browser(console, "198.51.100.1")
    assert (await sign_in(office, admin.email)).status_code == 303
    users_page = await office.get("/agency/users")
    assert "אימות דו-שלבי" in users_page.text
    rule = {"required": "1", "csrf_token": await csrf_token(office, "/agency/users")}
    assert (await office.post("/agency/two-factor", data=rule)).status_code == 303

    # The secretary's password is right: she is led to enrol before anything else.
    her = browser(console)
    page = await sign_in(her, secretary.email)
    assert page.status_code == 200 and "mazkira_session" not in page.headers.get("set-cookie", "")
    assert page.headers["cache-control"] == "no-store"
    assert "<svg" in page.text and "data:" not in page.text  # an inline QR code, no service
    secret = secret_on(page, secretary.email)
    totp = pyotp.TOTP(secret)
    assert (await her.get("/inbox")).status_code == 303  # no session yet: to the login page

    wrong = await send_code(her, page, "000000" if totp.at(NOW) != "000000" else "111111")
    assert wrong.status_code == 401 and "הקוד שגוי" in wrong.text
    assert secret_on(wrong, secretary.email) == secret  # the same QR code again

    enrolled = await send_code(her, wrong, totp.at(NOW))
    assert enrolled.status_code == 200 and "mazkira_session=" in enrolled.headers["set-cookie"]
    assert enrolled.headers["cache-control"] == "no-store"
    codes = CODES_SHOWN.findall(enrolled.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await her.get("/inbox")).status_code == 200
    async with db.transaction(write=False) as session:
        kept = set(await session.scalars(select(RecoveryCode.code_hash)))
        assert not kept & set(codes) and len(kept) == 10  # only keyed hashes are kept
    await sign_out(her)

    # Next time: the password, then a code, which cannot be used twice in its window.
    step = await sign_in(her, secretary.email)
    assert step.status_code == 200 and "<svg" not in step.text
    replayed = await send_code(her, step, totp.at(NOW))  # the code she enrolled with
    assert replayed.status_code == 401
    clock.moment = NOW + timedelta(seconds=30)
    fresh = await send_code(her, replayed, totp.at(clock.moment))
    assert fresh.status_code == 303 and fresh.headers["location"] == "/inbox"
    await sign_out(her)
    again = await send_code(her, await sign_in(her, secretary.email), totp.at(clock.moment))
    assert again.status_code == 401  # the same code once more: refused

    # A recovery code, in any case and spacing, signs her in once.
    with_code = await send_code(her, again, f" {codes[0].upper()} ")
    assert with_code.status_code == 303
    await sign_out(her)
    reused = await send_code(her, await sign_in(her, secretary.email), codes[0])
    assert reused.status_code == 401

    # Wrong codes are throttled with wrong passwords, per account and address.
    page = reused  # one wrong code since her last sign-in from here; four more make five
    for _ in range(4):
        page = await send_code(her, page, "12345x")
        assert page.status_code == 401
    held = await send_code(her, page, totp.at(clock.moment + timedelta(seconds=30)))
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    assert "יותר מדי ניסיונות כניסה כושלים" in held.text
    async with db.transaction(write=False) as session:
        assert len(list(await session.scalars(select(LoginFailure)))) == 5
    # From another address she signs in at once.
    phone = browser(console, "203.0.113.99")
    clock.moment = NOW + timedelta(seconds=60)
    signed = await send_code(phone, await sign_in(phone, secretary.email), codes[1])
    assert signed.status_code == 303

    # A half-done sign-in expires.
    late = await sign_in(phone, secretary.email)
    clock.moment += timedelta(minutes=11)
    expired = await send_code(phone, late, totp.at(clock.moment))
    assert expired.status_code == 422 and "הכניסה ארכה יותר מדי" in expired.text

    # Owners may choose: with the rule on, an owner without it signs straight in.
    assert (await sign_in(browser(console), owner.email)).status_code == 303

    events = await actions(db)
    assert events[:2] == ["sign_in", "two_factor.required_set"]
    assert events.count("two_factor.enrolled") == 1
    assert events.count("two_factor.recovery_used") == 2
    assert events.count("two_factor.failed") == 8  # 1 while enrolling, 3 replays, 4 wrong
    async with db.transaction(write=False) as session:
        her_sign_ins = list(
            await session.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "sign_in", AuditEvent.actor_id == secretary.id
                )
            )
        )
    assert [e.details["second_factor"] for e in her_sign_ins] == [
        "totp",
        "totp",
        "recovery",
        "recovery",
    ]


async def test_an_owner_turns_it_on_and_off_and_an_admin_resets_it(
    console: Starlette, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
        owner = await make_user(session, "owner")
    his = browser(console)
    assert (await sign_in(his, owner.email)).status_code == 303
    page = await his.get("/settings/two-factor")
    assert page.status_code == 200 and "<svg" not in page.text
    csrf = await csrf_token(his, "/settings/two-factor")
    started = await his.post("/settings/two-factor/start", data={"csrf_token": csrf})
    secret = secret_on(started, owner.email)
    totp = pyotp.TOTP(secret)
    wrong = await his.post(
        "/settings/two-factor/confirm", data={"csrf_token": csrf, "code": "99999"}
    )
    assert wrong.status_code == 422 and "הקוד שגוי" in wrong.text
    assert secret_on(wrong, owner.email) == secret
    on = await his.post(
        "/settings/two-factor/confirm", data={"csrf_token": csrf, "code": totp.at(NOW)}
    )
    assert on.status_code == 200 and len(CODES_SHOWN.findall(on.text)) == 10
    assert "10 קודי שחזור" in (await his.get("/settings/two-factor")).text

    # Turning it off takes a fresh code; the one just used is refused, in place.
    refused = await his.post(
        "/settings/two-factor/disable", data={"csrf_token": csrf, "code": totp.at(NOW)}
    )
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text
    assert "two_factor.failed" in await actions(db)  # and counted, as at sign-in
    clock.moment = NOW + timedelta(seconds=30)
    off = await his.post(
        "/settings/two-factor/disable",
        data={"csrf_token": csrf, "code": totp.at(clock.moment)},
    )
    assert off.status_code == 303
    await sign_out(his)
    assert (await sign_in(his, owner.email)).status_code == 303  # no code asked any more

    # He turns it on again, loses his phone; the admin turns it off for him.
    csrf = await csrf_token(his, "/settings/two-factor")
    started = await his.post("/settings/two-factor/start", data={"csrf_token": csrf})
    code = pyotp.TOTP(secret_on(started, owner.email)).at(clock.moment)
    confirm = {"csrf_token": csrf, "code": code}
    assert (await his.post("/settings/two-factor/confirm", data=confirm)).status_code == 200
    office = browser(console, "198.51.100.1")
    await sign_in(office, admin.email)
    listed = await office.get("/agency/users")
    assert f"/agency/users/{owner.id}/two-factor/reset" in listed.text
    reset = await office.post(
        f"/agency/users/{owner.id}/two-factor/reset",
        data={"csrf_token": await csrf_token(office, "/agency/users")},
    )
    assert reset.status_code == 303
    await sign_out(his)
    assert (await sign_in(his, owner.email)).status_code == 303
    async with db.transaction(write=False) as session:
        disabled = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "two_factor.disabled")
            )
        )
    assert [(e.actor_id, e.subject_id) for e in disabled] == [
        (owner.id, str(owner.id)),
        (admin.id, str(owner.id)),
    ]
    assert (await actions(db)).count("two_factor.enrolled") == 2


async def test_a_secretary_cannot_turn_off_what_the_agency_requires(
    console: Starlette, db: Database
) -> None:
    async with db.transaction() as session:
        admin = await make_user(session, "admin")
        secretary = await make_user(session, "secretary")
    her = browser(console)
    await sign_in(her, secretary.email)
    csrf = await csrf_token(her, "/settings/two-factor")
    started = await her.post("/settings/two-factor/start", data={"csrf_token": csrf})
    totp = pyotp.TOTP(secret_on(started, secretary.email))
    confirm = {"csrf_token": csrf, "code": totp.at(NOW)}
    assert (await her.post("/settings/two-factor/confirm", data=confirm)).status_code == 200
    office = browser(console, "198.51.100.1")
    await sign_in(office, admin.email)
    rule = {"required": "1", "csrf_token": await csrf_token(office, "/agency/users")}
    assert (await office.post("/agency/two-factor", data=rule)).status_code == 303
    refused = await her.post(
        "/settings/two-factor/disable",
        data={"csrf_token": csrf, "code": totp.at(NOW + timedelta(seconds=30))},
    )
    assert refused.status_code == 409
    assert "הסוכנות דורשת אימות דו-שלבי" in refused.text
    await sign_out(her)  # her password alone no longer signs her in
    assert (await sign_in(her, secretary.email)).status_code == 200


async def test_wrong_codes_turning_it_off_are_throttled_too(
    console: Starlette, db: Database, clock: MovableClock
) -> None:
    async with db.transaction() as session:
        owner = await make_user(session, "owner")
    his = browser(console)
    await sign_in(his, owner.email)
    csrf = await csrf_token(his, "/settings/two-factor")
    started = await his.post("/settings/two-factor/start", data={"csrf_token": csrf})
    totp = pyotp.TOTP(secret_on(started, owner.email))
    confirm = {"csrf_token": csrf, "code": totp.at(NOW)}
    assert (await his.post("/settings/two-factor/confirm", data=confirm)).status_code == 200
    guess = {"csrf_token": csrf, "code": "guess-it"}
    for _ in range(5):
        wrong = await his.post("/settings/two-factor/disable", data=guess)
        assert wrong.status_code == 422 and "הקוד שגוי" in wrong.text
    clock.moment = NOW + timedelta(seconds=30)
    right = {"csrf_token": csrf, "code": totp.at(clock.moment)}
    held = await his.post("/settings/two-factor/disable", data=right)
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    assert "two_factor.disabled" not in await actions(db)
    clock.moment = NOW + timedelta(minutes=6)
    right = {"csrf_token": csrf, "code": totp.at(clock.moment)}
    assert (await his.post("/settings/two-factor/disable", data=right)).status_code == 303
    assert (await actions(db)).count("two_factor.failed") == 5


def test_the_command_line_turns_it_off_for_a_locked_out_admin(tmp_path: Path) -> None:
    """`mazkira reset-two-factor`: the last admin lost her phone and her codes."""
    database = tmp_path / "agency.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}

    def mazkira(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "console.cli", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    assert mazkira("migrate").returncode == 0
    made = mazkira("create-user", "--email", "dana@example.test", "--password", "dana-secret1")
    assert made.returncode == 2  # --role is required: argparse's refusal
    made = mazkira(
        *("create-user", "--email", "dana@example.test", "--password", "dana-secret1"),
        *("--role", "admin"),
    )
    assert made.returncode == 0, made.stderr
    with sqlite3.connect(database) as connection:
        [(user_id,)] = connection.execute("SELECT id FROM users").fetchall()
        connection.execute(
            "INSERT INTO second_factors (user_id, secret, created_at, enabled_at)"
            " VALUES (?, ?, '2026-12-01 08:00:00.000000', '2026-12-01 08:00:00.000000')",
            (user_id, pyotp.random_base32()),
        )
        connection.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, 'x')", (user_id,)
        )
    assert mazkira("reset-two-factor", "--email", "Dana@Example.test").returncode == 0
    again = mazkira("reset-two-factor", "--email", "dana@example.test")
    assert again.returncode == 2 and "already off" in again.stderr
    unknown = mazkira("reset-two-factor", "--email", "nobody@example.test")
    assert unknown.returncode == 2 and "No such user" in unknown.stderr
    with sqlite3.connect(database) as connection:
        left = connection.execute(
            "SELECT (SELECT count(*) FROM second_factors), (SELECT count(*) FROM recovery_codes)"
        ).fetchone()
        audit = connection.execute(
            "SELECT action, actor_email, address, subject_id FROM audit_events"
        ).fetchall()
    assert left == (0, 0)
    assert [row[:3] for row in audit] == [("two_factor.disabled", "cli", "cli")]
