"""The SIP stack itself: the shipped Kamailio configuration and rtpengine start privately, and a
carrier's call is refused clearly when Mazkira cannot be asked."""

from __future__ import annotations

from collections.abc import Callable

from tests.voice.sip_stack import Caller, SipStack, free_port


def test_the_stack_starts_and_a_call_without_mazkira_is_refused(
    sip_stack: Callable[[str], SipStack], caller: Callable[..., Caller]
) -> None:
    stack = sip_stack(f"http://127.0.0.1:{free_port()}")  # nobody listens there
    assert stack.ready_seconds < 10
    carrier = caller(stack, "+972542345678")
    carrier.call("+97231234567")
    carrier.wait_for(r"session closed: 503 Service Unavailable")
