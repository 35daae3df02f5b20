"""A console without a browser: signs in over HTTP and listens on `/ws` like a page does."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.servers import Server

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
META = re.compile(r"^<!--mz (\{.*?\})-->")


class Console:
    def __init__(self, server: Server) -> None:
        self.server = server
        # An idle connection is dropped before uvicorn's 5 s keep-alive closes it under us (a
        # request sent on it in that instant would fail, as the soak saw).
        self.http = httpx.AsyncClient(
            base_url=server.url, limits=httpx.Limits(keepalive_expiry=2.0)
        )
        self.token = ""

    async def sign_in(self, email: str, password: str) -> Console:
        page = await self.http.get("/login")
        self.token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        answer = await self.http.post(
            "/login", data={"email": email, "password": password, "csrf_token": self.token}
        )
        assert answer.status_code == 303, answer.text
        self.token = CSRF.search((await self.http.get("/inbox")).text).group(1)  # type: ignore[union-attr]
        return self

    def cookie(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())

    async def socket(
        self,
        *,
        page: str = "queue",
        mode: str = "viewing",
        cursor: dict[str, int] | None = None,
        since: datetime | None = None,
        origin: str | None = None,
    ) -> ClientConnection:
        ws = await websockets.connect(
            self.server.url.replace("http", "ws") + "/ws",
            additional_headers={"Cookie": self.cookie(), "Origin": origin or self.server.url},
            max_size=2**22,
        )
        hello = {
            "type": "hello",
            "page": page,
            "mode": mode,
            "cursor": cursor or {},
            "since": (since or datetime.now(UTC)).isoformat(),
        }
        await ws.send(json.dumps(hello))
        return ws

    async def post(self, path: str, **data: str) -> httpx.Response:
        return await self.http.post(path, data={"csrf_token": self.token, **data})

    async def close(self) -> None:
        await self.http.aclose()


def meta(message: str) -> dict[str, Any]:
    found = META.match(message)
    return json.loads(found.group(1)) if found else {}


async def receive(ws: ClientConnection, contains: str, within: float = 30.0) -> str:
    """The first message holding `contains` (others are skipped). `within` only bounds a wait
    that has failed: a machine busy with the other test worker may take seconds."""
    async with asyncio.timeout(within):
        while True:
            message = str(await ws.recv())
            if contains in message:
                return message


async def silence(ws: ClientConnection, contains: str, seconds: float = 0.8) -> bool:
    """True when nothing holding `contains` arrives for a while."""
    try:
        await receive(ws, contains, within=seconds)
    except TimeoutError:
        return True
    return False


async def close_code(ws: ClientConnection, within: float = 3.0) -> int | None:
    """Read until the server closes the socket; the code it closed with."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
