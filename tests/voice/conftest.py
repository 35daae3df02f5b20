"""The phone's tests: a private SIP stack (Kamailio, rtpengine) and a caller per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.voice.sip_stack import Caller, SipStack

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
