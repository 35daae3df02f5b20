"""Headers and edges: no signed-in answer (page, fragment, export, download) is kept by a
browser or a proxy; a connection that never finishes its request's head is closed; bodies and
filters at the edges of what parsers take (JSON nested past Python's stack, the years 1 and
9999) are refused with 422, never a 500."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from console.base.db import Database
from console.people import api_tokens
from routes import routes as url_map
from tests.factories import make_agency, make_user, sign_in
from tests.servers import Server

DEEP = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
# The calendar feed is fetched by calendar programs, through its signed link, and says itself
# how long they may keep it (five minutes, private).
OWN_CACHING = {"/calendar/{token}.ics"}


def gets() -> list[str]:
    paths = []
    for route in url_map:
        if isinstance(route, Route) and "GET" in (route.methods or ()):
            path = route.path
            while "{" in path:
                start, end = path.index("{"), path.index("}")
                name = path[start + 1 : end]
                value = str(uuid.uuid4()) if name.endswith("_id") else "x"
                path = path[:start] + value + path[end + 1 :]
            if route.path not in OWN_CACHING:
                paths.append(path)
    return paths


async def test_no_signed_in_answer_is_kept_by_a_browser_or_a_proxy(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session)
        admin = await make_user(session, "admin")
    for person in (admin, agency.secretary, agency.owner_a):
        await sign_in(client, person.email)
        for path in gets():
            for headers in ({}, {"HX-Request": "true"}):
                answer = await client.get(path, headers=headers)
                assert answer.headers.get("cache-control") == "no-store", (person.role, path)
    kpis = f"?business={agency.a.id}"
    exports = [f"/portal/kpis.csv{kpis}", f"/portal/kpis.xlsx{kpis}", "/agency/reports.xlsx"]
    exports += ["/agency/reports/secretaries.csv", "/agency/reports/billing.csv"]
    await sign_in(client, admin.email)
    for path in exports:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-store", path
    assert "cache-control" not in (await client.get("/static/app.css")).headers


@pytest.mark.parametrize("days", [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")])
async def test_days_out_of_range_in_filters_are_refused(
    client: httpx.AsyncClient, db: Database, days: tuple[str, str]
) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session)
        admin = await make_user(session, "admin")
        token = await api_tokens.create_token(session, admin, "site", now=datetime.now(UTC))
    first, last = days
    asked = {
        agency.owner_a: [
            f"/portal?from={first}",
            f"/portal?to={last}",
            f"/portal?from={first}&to={last}",
            f"/portal/kpis?from={first}&to={last}",
            f"/portal/kpis.csv?business={agency.a.id}&from={first}&to={last}",
        ],
        admin: [
            f"/agency/audit?since={first}",
            f"/agency/audit?until={last}",
            f"/agency/reports?from={first}&to={last}",
        ],
    }
    for person, paths in asked.items():
        await sign_in(client, person.email)
        for path in paths:
            answer = await client.get(path, headers={"Accept": "application/json"})
            assert answer.status_code == 422, (path, answer.status_code, answer.text[:300])
    bearer = {"Authorization": f"Bearer {token.secret}"}
    answer = await client.get(f"/api/v1/kpis?from={first}&to={last}", headers=bearer)
    assert answer.status_code == 422, answer.text


async def test_json_nested_too_deep_is_refused(client: httpx.AsyncClient, db: Database) -> None:
    async with db.transaction() as session:
        agency = await make_agency(session, a={"slug": "cohen"})
        admin = await make_user(session, "admin")
        token = await api_tokens.create_token(session, admin, "site", now=datetime.now(UTC))
    headers = {"Content-Type": "application/json", "X-Intake-Key": agency.a.intake_key}
    answer = await client.post("/intake/cohen/form", content=DEEP, headers=headers)
    assert answer.status_code == 422 and answer.json()["field"] == "body"
    headers["Authorization"] = f"Bearer {token.secret}"
    answer = await client.post("/api/v1/leads", content=DEEP, headers=headers)
    assert answer.status_code == 400, answer.text  # the API's answer to a body it cannot read


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection before `seconds` have passed."""
    connection.settimeout(seconds)
    try:
        return connection.recv(1024) == b""
    except TimeoutError:
        return False


def test_a_connection_that_never_finishes_its_request_is_closed(tmp_path: Path) -> None:
    """`mazkira serve` with HEADER_TIMEOUT_SECONDS=1: a connection that sends nothing, half a
    request line, or a head without its last line is closed; a whole request is answered, and
    a connection kept alive between requests is given its own deadline again."""
    server = Server(tmp_path, {"HEADER_TIMEOUT_SECONDS": "1"})
    server.start()
    try:
        idle = socket.create_connection(("127.0.0.1", server.port))
        half_line = socket.create_connection(("127.0.0.1", server.port))
        half_line.sendall(b"GET /heal")
        no_end = socket.create_connection(("127.0.0.1", server.port))
        no_end.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for connection in (idle, half_line, no_end):
            assert closed_within(connection, 10)
            connection.close()
        assert time.monotonic() - started < 10
        kept = socket.create_connection(("127.0.0.1", server.port))
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):  # the whole answer, its JSON body too
            answer += kept.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /heal")  # a second request on the same connection, never finished
        assert closed_within(kept, 10)
        kept.close()
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
