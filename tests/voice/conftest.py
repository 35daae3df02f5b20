"""The phone's tests: a private SIP stack (Kamailio, rtpengine) and a caller per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asgi import create_app
from console.base.config import Settings
from console.base.db import Database
from tests.conftest import SECRET as APP_SECRET
from tests.voice.sip_stack import DOMAIN, Caller, SipStack

SECRET = "s3cretSharedWithKamailio"


@pytest.fixture
def sip_stack(tmp_path: Path) -> Iterator[Callable[[str], SipStack]]:
    """Starts a private rtpengine and Kamailio asking the given Mazkira URL; stops them after."""
    stacks: list[SipStack] = []

    def start(mazkira_url: str, secret: str = SECRET) -> SipStack:
        stack = SipStack(tmp_path, mazkira_url=mazkira_url, secret=secret)
        stacks.append(stack)
        stack.start()
        return stack

    yield start
    for stack in stacks:
        stack.stop()


@pytest.fixture
def caller(tmp_path: Path) -> Iterator[Callable[..., Caller]]:
    """A baresip caller (a carrier's plain SIP, G.711) playing a wav; stopped after the test."""
    callers: list[Caller] = []

    def make(stack: SipStack, number: str, wav: Path | None = None) -> Caller:
        sound = wav or Path("/usr/share/baresip/ring.wav")
        one = Caller(tmp_path, stack, number=number, wav=sound)
        callers.append(one)
        return one

    yield make
    for one in callers:
        one.stop()


@pytest.fixture
def phone_settings(db: Database) -> Settings:
    """The console as a phone: a SIP secret shared with the SIP server."""
    return Settings(
        database_url=db.url,
        secret_key=APP_SECRET,
        sip_secret=SECRET,
        sip_ws_url="ws://127.0.0.1:9/",
        sip_domain=DOMAIN,
    )


@pytest.fixture
async def phone_app(phone_settings: Settings, db: Database) -> AsyncIterator[Any]:
    application = create_app(phone_settings, db=db, run_jobs=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def phone_client(phone_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=phone_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def steady_roster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Routing's roster (console/voice/roster.py) not reloaded by the clock during the test, so
    statements counted are the question's own on a slow machine too (its own commits and any
    write it does not follow still refresh it)."""
    from console.voice import roster

    monkeypatch.setattr(roster, "REFRESH_SECONDS", 3600.0)
