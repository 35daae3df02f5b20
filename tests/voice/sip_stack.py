"""A private SIP stack for a test (console/demo/sip_stack.py: rtpengine and Kamailio with the
shipped `deploy/sip/kamailio.cfg` on free ports, baresip as a carrier's caller): skipped without
the programs, failing under CI=true, where `.ci/run` installs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.demo import sip_stack
from console.demo.sip_stack import DOMAIN, KAMAILIO_CFG, ROOT, free_port
from tests.conftest import IN_CI

__all__ = ["DOMAIN", "KAMAILIO_CFG", "ROOT", "Caller", "SipStack", "free_port", "sip_binaries"]


def sip_binaries() -> dict[str, str]:
    """kamailio, rtpengine and baresip; skips without them, fails under CI=true."""
    try:
        return sip_stack.installed()
    except sip_stack.NotInstalled as error:
        if IN_CI:
            pytest.fail(f"{error}, and CI=true requires it")
        pytest.skip(str(error))


class SipStack(sip_stack.SipStack):
    """rtpengine + Kamailio for one test, asking `mazkira_url` whom to ring."""

    # A test's server shares two cores with the other worker's tests: its first answers (templates
    # compiled, connections opened) may take longer than a deployment's 2 s allow.
    mazkira_timeout = 10

    def __init__(self, workdir: Path, *, mazkira_url: str, secret: str) -> None:
        sip_binaries()
        super().__init__(workdir, mazkira_url=mazkira_url, secret=secret)

    def served_env(self, kept: Path) -> dict[str, str]:
        """What a `mazkira serve` needs to answer this stack: the shared secret, the browsers'
        WebSocket and SIP domain, and rtpengine's control port and recording folder, the
        recordings kept in the folder `kept`."""
        return {
            "SIP_SECRET": self.secret,
            "SIP_WS_URL": self.ws_url,
            "SIP_DOMAIN": self.domain,
            "RECORDINGS_DIR": str(kept),
            "RTPENGINE_NG": f"127.0.0.1:{self.ng_port}",
            "RTPENGINE_RECORDING_DIR": str(self.recording_dir),
        }


class Caller(sip_stack.Caller):
    """baresip as a carrier's caller (see console/demo/sip_stack.py)."""

    def __init__(self, workdir: Path, stack: SipStack, *, number: str, wav: Path) -> None:
        sip_binaries()
        super().__init__(workdir, stack, number=number, wav=wav)
