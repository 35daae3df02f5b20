"""What the fault tests share: a console page that reconnects as `static/app.js` does, a web
form sender that retries as a provider does, and polling under a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from websockets.exceptions import InvalidHandshake, WebSocketException

from tests.live_client import Console, meta

TIMEOUT = 20.0
POLL = 0.05
LEAD_ROW = re.compile(r'id="lead-([0-9a-f-]{36})"')


async def eventually(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll `check` until it holds; fail after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        done = check()
        if done if isinstance(done, bool) else await done:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {TIMEOUT:.0f} s")
        await asyncio.sleep(POLL)


class LiveView:
    """One open page of the console: htmx's ws extension reconnects it (here every 0.1 s
    instead of with backoff), and `mz-live` says hello with the cursor, keeps the page's
    render time for businesses it has no number for, and drops what it has seen (a seq at or
    below the cursor). `shown` is what got through, per business, in order."""

    def __init__(self, console: Console, page: str = "queue") -> None:
        self.console = console
        self.page = page
        self.since = datetime.now(UTC)
        self.cursor: dict[str, int] = {}
        self.shown: dict[str, list[int]] = defaultdict(list)
        self.leads: Counter[str] = Counter()  # lead id -> messages shown that carry its row
        self.dropped = 0  # repeats the page threw away
        self.connects = 0
        self.upstreams: set[str] = set()
        self.closes: list[int | None] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                ws = await self.console.socket(
                    page=self.page, cursor=dict(self.cursor), since=self.since
                )
            except (OSError, InvalidHandshake, TimeoutError):
                await asyncio.sleep(0.1)
                continue
            self.connects += 1
            # behind a proxy that names the process it went to (tests/test_topology.py)
            self.upstreams.add(ws.response.headers.get("X-Upstream", "") if ws.response else "")
            try:
                async for message in ws:
                    self._take(str(message))
            except WebSocketException:
                pass
            self.closes.append(ws.close_code)
            await asyncio.sleep(0.1)

    def _take(self, message: str) -> None:
        found = meta(message)
        business, seq = found.get("b"), found.get("s")
        if business and seq:
            if self.cursor.get(business, 0) >= seq:
                self.dropped += 1
                return
            self.cursor[business] = seq
            self.shown[business].append(seq)
        for lead in set(LEAD_ROW.findall(message)):
            self.leads[lead] += 1

    def has(self, leads: set[str]) -> bool:
        return leads <= set(self.leads)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@dataclass
class FormSender:
    """Posts a business's web form until each post is taken (201, or 200 for a repeat), as a
    site or a provider retries: a refused connection, a dropped answer or a status in
    `retry_on` (503; behind nginx also its 502 and 504) is sent again; any other answer fails
    the test. `answers` counts every status seen; `errors` the failures with no answer at all;
    `upstreams` the processes a proxy said answered (its X-Upstream header)."""

    base_url: str
    retry_on: tuple[int, ...] = (503,)
    upstreams: set[str] = field(default_factory=set)
    answers: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    bodies: list[str] = field(default_factory=list)  # of the answers that were not 2xx

    async def post(self, slug: str, key: str, external_id: str, phone: str) -> str:
        """The lead's id, once the form was taken."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as http:
            while True:
                try:
                    answer = await http.post(
                        f"/intake/{slug}/form",
                        headers={"X-Intake-Key": key},
                        json={"phone": phone, "external_id": external_id, "name": "תקלה"},
                    )
                except httpx.TransportError as error:
                    self.errors[type(error).__name__] += 1
                    await asyncio.sleep(0.05)
                    continue
                self.answers[answer.status_code] += 1
                if answer.status_code in (200, 201):
                    upstream = answer.headers.get("x-upstream", "").split(",")[-1].strip()
                    if upstream:  # the process that answered (nginx lists those it tried)
                        self.upstreams.add(upstream)
                    return str(answer.json()["lead_id"])
                self.bodies.append(answer.text)
                if answer.status_code not in self.retry_on:
                    raise AssertionError(f"{answer.status_code}: {answer.text}")
                await asyncio.sleep(0.05)


def phone(n: int) -> str:
    """A valid Israeli mobile number, one per `n`."""
    return f"054{2345678 + n:07d}"
