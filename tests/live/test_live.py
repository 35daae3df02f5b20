"""The live console against real `mazkira serve` processes and the `websockets` client."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.exceptions import InvalidStatus

from tests.live_client import Console, close_code, meta, receive, silence
from tests.servers import Server

PASSWORD = "live-password"


@pytest.fixture(scope="module")
def agency(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("live"), {"LIVE_REVALIDATE_SECONDS": "1"})
    server.run("migrate")
    for slug, name in (("cohen", "אינסטלציה כהן"), ("levi", "מרפאת לוי")):
        server.run("create-business", "--slug", slug, "--name", name)
    for email, role, businesses in (
        ("michal@example.test", "secretary", ["cohen"]),
        ("noa@example.test", "secretary", ["cohen"]),
        ("dana@example.test", "secretary", ["levi"]),
        ("admin@example.test", "admin", []),
        ("avi@example.test", "owner", ["cohen"]),
        ("rina@example.test", "owner", ["levi"]),
    ):
        extra = [arg for slug in businesses for arg in ("--business", slug)]
        server.run("create-user", "--email", email, "--password", PASSWORD, "--role", role, *extra)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def consoles(agency: Server) -> AsyncIterator[dict[str, Console]]:
    signed = {
        name: await Console(agency).sign_in(f"{name}@example.test", PASSWORD)
        for name in ("michal", "noa", "dana", "admin", "avi", "rina")
    }
    yield signed
    for console in signed.values():
        await console.close()


async def business_id(console: Console, name: str) -> str:
    page = (await console.http.get("/leads/new")).text
    return re.search(rf'<option value="([0-9a-f-]{{36}})"[^>]*>{name}<', page).group(1)  # type: ignore[union-attr]


async def new_lead(console: Console, business: str, phone: str, subject: str) -> str:
    answer = await console.post("/leads", business_id=business, phone=phone, subject=subject)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"].removeprefix("/leads/").split("#")[0]  # "#call-log"


async def test_a_new_lead_reaches_every_console_of_its_business_and_no_other(
    consoles: dict[str, Console],
) -> None:
    cohen = await business_id(consoles["michal"], "אינסטלציה כהן")
    sockets = {name: await c.socket() for name, c in consoles.items()}
    lead = await new_lead(consoles["michal"], cohen, "052-7654321", "נזילה <b>חזקה</b>")
    for name in ("michal", "noa", "admin"):
        message = await receive(sockets[name], f'id="lead-{lead}"')
        assert meta(message)["b"] == cohen and meta(message)["s"] >= 1
        assert "נזילה &lt;b&gt;חזקה&lt;/b&gt;" in message  # escaped
        assert 'data-upsert="#queue-rows"' in message
        assert 'data-attention="lead" data-title="' in message  # sound and notification
        assert "אינסטלציה כהן" in message
    for name in ("dana", "rina"):  # another business's secretary and owner: nothing at all
        assert await silence(sockets[name], lead)
    for ws in sockets.values():
        await ws.close()


async def test_the_handshake_is_refused_without_a_session_or_from_another_site(
    agency: Server, consoles: dict[str, Console]
) -> None:
    import websockets

    with pytest.raises(InvalidStatus) as no_session:
        await websockets.connect(
            agency.url.replace("http", "ws") + "/ws", additional_headers={"Origin": agency.url}
        )
    assert no_session.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as foreign:
        await consoles["noa"].socket(origin="https://evil.example")
    assert foreign.value.response.status_code == 403
    forged = Console(agency)
    forged.http.cookies.set("mazkira_session", "forged.token")
    with pytest.raises(InvalidStatus):
        await forged.socket()
    await forged.close()


async def test_logout_closes_the_open_socket_and_the_cookie_is_dead(
    consoles: dict[str, Console],
) -> None:
    noa = consoles["noa"]
    ws = await noa.socket()
    cookie = noa.cookie()
    await noa.post("/logout")
    assert await close_code(ws, within=3) == 4401
    noa.http.cookies.clear()
    for part in cookie.split("; "):
        name, value = part.split("=", 1)
        noa.http.cookies.set(name, value)
    with pytest.raises(InvalidStatus):
        await noa.socket()


async def test_a_reconnecting_console_gets_what_it_missed_in_order_once(
    consoles: dict[str, Console],
) -> None:
    michal = consoles["michal"]
    cohen = await business_id(michal, "אינסטלציה כהן")
    ws = await michal.socket()
    first = await new_lead(michal, cohen, "054-2345678", "ראשונה")
    # created, claimed by her and her call on it started: every event of the first lead seen
    per_lead = 3
    for _ in range(per_lead):
        seen = meta(await receive(ws, first))["s"]
    await ws.close()
    missed = [await new_lead(michal, cohen, f"052-76543{n:02d}", f"missed {n}") for n in (11, 12)]
    ws = await michal.socket(cursor={cohen: seen})
    sequence: list[tuple[int, str]] = []
    async with asyncio.timeout(5):
        while len(sequence) < 2 * per_lead:
            message = str(await ws.recv())
            if meta(message).get("b") == cohen:
                sequence.append((meta(message)["s"], message))
    numbers = [s for s, _ in sequence]
    assert numbers == sorted(numbers) and len(set(numbers)) == 2 * per_lead
    assert min(numbers) == seen + 1
    assert missed[0] in sequence[0][1] and missed[1] in sequence[-1][1]
    await ws.close()


async def test_bad_frames_and_requests_close_that_socket_only(
    consoles: dict[str, Console],
) -> None:
    michal = consoles["michal"]
    cohen = await business_id(michal, "אינסטלציה כהן")
    bystander = await consoles["admin"].socket()
    cases = [
        ("not json at all", 1003),
        ("x" * 20_000, 1009),
        ('{"type": "subscribe-everything"}', 1003),
    ]
    for frame, code in cases:
        ws = await michal.socket()
        await ws.send(frame)
        assert await close_code(ws, within=3) == code, frame[:30]
    ws = await michal.socket(cursor={cohen: 10**9})
    assert await close_code(ws, within=3) == 4409
    lead = await new_lead(michal, cohen, "053-7654321", "still alive")
    assert lead in await receive(bystander, lead)  # the server and other sockets carry on
    await bystander.close()


async def test_presence_shows_who_is_on_a_lead_and_clears_when_they_leave(
    consoles: dict[str, Console],
) -> None:
    michal, admin = consoles["michal"], consoles["admin"]
    cohen = await business_id(michal, "אינסטלציה כהן")
    lead = await new_lead(michal, cohen, "055-7654321", "presence")
    watcher = await admin.socket()
    on_lead = await michal.socket(page=f"lead:{lead}", mode="calling")
    # (the socket's first replay may carry the lead's row, with nobody on it yet)
    shown = await receive(watcher, "data-viewer")
    assert f'id="row-presence-{lead}"' in shown and "calling" in shown and "📞" in shown
    await on_lead.close()
    # The watcher's replay of the row, rendered once she was on it, may still come first.
    async with asyncio.timeout(5):
        while "data-viewer" in await receive(watcher, f'id="row-presence-{lead}"'):
            pass
    await watcher.close()


async def test_two_processes_on_postgresql_and_redis_fan_out_to_each_other(
    tmp_path: Path, private_postgres_url: str, redis_url: str
) -> None:
    env = {
        "DATABASE_URL": private_postgres_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "two-processes-" + "k" * 40,
    }
    first = Server(tmp_path / "one", env)
    second = Server(tmp_path / "two", env)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first.run("migrate")
    first.run("create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    for email in ("michal@example.test", "noa@example.test"):
        first.run(
            "create-user",
            "--email",
            email,
            "--password",
            PASSWORD,
            "--role",
            "secretary",
            "--business",
            "cohen",
        )
    first.start()
    second.start()
    try:
        michal = await Console(first).sign_in("michal@example.test", PASSWORD)
        noa = await Console(second).sign_in("noa@example.test", PASSWORD)
        on_first, on_second = await michal.socket(), await noa.socket()
        await asyncio.sleep(0.3)
        cohen = await business_id(michal, "אינסטלציה כהן")
        lead = await new_lead(michal, cohen, "052-7654321", "דרך שני תהליכים")
        for ws in (on_first, on_second):
            assert "דרך שני תהליכים" in await receive(ws, f'id="lead-{lead}"')
        await on_first.close()
        await on_second.close()
        await michal.close()
        await noa.close()
    finally:
        first.stop()
        second.stop()


async def test_serve_shuts_down_gracefully_with_sockets_open(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.run("migrate")
    server.run("create-business", "--slug", "cohen", "--name", "כהן")
    server.run(
        "create-user",
        "--email",
        "m@example.test",
        "--password",
        PASSWORD,
        "--role",
        "secretary",
        "--business",
        "cohen",
    )
    server.start()
    console = await Console(server).sign_in("m@example.test", PASSWORD)
    sockets = [await console.socket() for _ in range(3)]
    await asyncio.sleep(0.3)
    stopping = asyncio.get_running_loop().run_in_executor(None, server.stop)
    for ws in sockets:
        assert await close_code(ws, within=15) in (1001, 1012)
    # uvicorn shuts down in order, then re-raises SIGTERM so the exit status tells how it ended.
    assert await stopping in (0, -15)
    log = server.log.read_text()
    assert "Application shutdown complete." in log and "Traceback" not in log
    await console.close()


async def test_the_owners_portal_shows_a_handled_call_the_moment_it_is_logged(
    consoles: dict[str, Console],
) -> None:
    michal, avi = consoles["michal"], consoles["avi"]
    cohen = await business_id(michal, "אינסטלציה כהן")
    portal = await avi.socket(page="portal")
    lead = await new_lead(michal, cohen, "058-7654321", "דוד חדש")
    assert await michal.post(f"/leads/{lead}/calls", kind="inbound_call")
    call = re.search(
        r"/calls/([0-9a-f-]{36})/autosave", (await michal.http.get(f"/leads/{lead}")).text
    )
    assert call is not None
    wrapped = await michal.post(
        f"/calls/{call.group(1)}/wrap-up", notes="ok", outcome="info_given", summary="ביקור מחר"
    )
    assert wrapped.status_code == 303
    row = await receive(portal, f'id="handled-{call.group(1)}"')
    assert "ביקור מחר" in row and 'data-upsert-at="afterbegin"' in row
    await portal.close()


async def test_an_assignment_changed_straight_in_the_database_reaches_the_open_socket(
    agency: Server, consoles: dict[str, Console]
) -> None:
    """No hub hears of it: the socket's quiet re-check reads her access with her session."""
    michal, admin = consoles["michal"], consoles["admin"]
    cohen = await business_id(michal, "אינסטלציה כהן")
    levi = await business_id(consoles["dana"], "מרפאת לוי")
    ws = await michal.socket()
    database = agency.env["DATABASE_URL"].replace("sqlite://", "sqlite+aiosqlite://")
    engine = create_async_engine(database)
    michal_and_levi = "FROM users, businesses WHERE email = 'michal@example.test' AND slug = 'levi'"
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO secretary_assignments (user_id, business_id, is_backup) "
                f"SELECT users.id, businesses.id, 0 {michal_and_levi}"
            )
        )
    assert 'data-reload="main"' in await receive(ws, "data-reload", within=5)
    lead = await new_lead(admin, levi, "050-7654321", "למרפאה")
    assert "למרפאה" in await receive(ws, f'id="lead-{lead}"')
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "DELETE FROM secretary_assignments WHERE (user_id, business_id) IN "  # noqa: S608
                f"(SELECT users.id, businesses.id {michal_and_levi})"
            )
        )
    await engine.dispose()
    assert 'data-reload="main"' in await receive(ws, "data-reload", within=5)
    gone = await new_lead(admin, levi, "050-7654322", "לא אליה")
    kept = await new_lead(admin, cohen, "050-7654323", "אליה")
    async with asyncio.timeout(5):
        while f'id="lead-{kept}"' not in (message := str(await ws.recv())):
            assert gone not in message and levi not in message
    await ws.close()


async def test_a_deactivated_users_socket_closes_by_itself(
    agency: Server, consoles: dict[str, Console]
) -> None:
    dana = consoles["dana"]
    ws = await dana.socket()
    await asyncio.sleep(0.2)
    database = agency.env["DATABASE_URL"].replace("sqlite://", "sqlite+aiosqlite://")
    engine = create_async_engine(database)
    async with engine.begin() as connection:  # as an admin tool elsewhere would
        await connection.execute(
            text("UPDATE users SET active = 0 WHERE email = 'dana@example.test'")
        )
    await engine.dispose()
    assert await close_code(ws, within=5) == 4401
