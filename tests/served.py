"""The app under test served by uvicorn in the test's own event loop, so a real websocket client
can talk to it while the test shares its database (SQLite or PostgreSQL) and its hub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.factories import PASSWORD

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave the test runner's signal handlers alone."""
        yield


@contextlib.asynccontextmanager
async def served(app: Any, *, access_log: bool = False) -> AsyncIterator[str]:
    """The app on a free port of 127.0.0.1 (its lifespan is the fixture's); yields its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", log_config=None, access_log=access_log
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.005)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class Browser:
    """One signed-in person over real HTTP, able to open `/ws` as a page does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(base_url=url)
        self.token = ""

    async def sign_in(self, email: str, home: str, password: str = PASSWORD) -> Browser:
        page = await self.http.get("/login")
        found = CSRF.search(page.text)
        assert found, "no csrf_token on /login"
        answer = await self.http.post(
            "/login", data={"email": email, "password": password, "csrf_token": found.group(1)}
        )
        assert answer.status_code == 303, answer.text
        found = CSRF.search((await self.http.get(home)).text)
        assert found, f"no csrf_token on {home}"
        self.token = found.group(1)
        return self

    async def post(self, path: str, **data: str) -> httpx.Response:
        return await self.http.post(path, data={"csrf_token": self.token, **data})

    def cookie(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self.http.cookies.items())

    async def socket(
        self, hello: dict[str, Any] | None = None, *, origin: str | None = ""
    ) -> ClientConnection:
        """`origin=None` sends no Origin header at all; "" sends this site's."""
        headers = {"Cookie": self.cookie()}
        if origin is not None:
            headers["Origin"] = origin or self.url
        ws = await websockets.connect(
            self.url.replace("http", "ws") + "/ws", additional_headers=headers
        )
        if hello is not None:
            await ws.send(json.dumps(hello))
        return ws

    async def close(self) -> None:
        await self.http.aclose()


async def close_code(ws: ClientConnection, within: float = 3.0) -> int | None:
    """Read until the server closes the socket; the code it closed with (None: still open)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None
