"""`mazkira demo --phone`: a private Kamailio and rtpengine beside the served demo, and a caller
ringing the demo businesses; without them installed, the demo says so and serves as before."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import SECRET
from tests.voice.sip_stack import ROOT, sip_binaries


def _demo(tmp_path: Path, port: int, *args: str, path: str | None = None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
        "SECRET_KEY": SECRET,
        "PATH": path if path is not None else os.environ.get("PATH", ""),
    }
    for name in ("SIP_SECRET", "SIP_WS_URL", "SIP_DOMAIN", "REDIS_URL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "console.cli", "demo", "--port", str(port), *args]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "demo.log").open("w"),
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def stopped(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Demos started by the test, stopped (SIGTERM, as Ctrl-C would) after it."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for demo in started:
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                demo.kill()


def _until(found: object, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(found) and found():
            return
        time.sleep(0.2)
    raise AssertionError(f"never {what}:\n{log.read_text(errors='replace')[-4000:]}")


def _serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _calls(database: Path) -> list[tuple[str, str]]:
    if not database.exists():
        return []
    with sqlite3.connect(database, timeout=5) as connection:
        try:
            return connection.execute("SELECT dialled, state FROM calls").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def _udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_demo_rings_its_businesses_through_a_private_sip_server(
    tmp_path: Path, free_port: int, stopped: list[subprocess.Popen[str]]
) -> None:
    sip_binaries()  # skipped without them; CI=true fails instead
    log = tmp_path / "demo.log"
    demo = _demo(tmp_path, free_port, "--phone", "--call-every", "1", "--call-length", "5")
    stopped.append(demo)
    _until(lambda: _serving(free_port), "served", log)
    said = re.search(
        r"Phone: Kamailio at sip:127\.0\.0\.1:(\d+) \(WebSocket (ws://\S+)\)", log.read_text()
    )
    assert said, log.read_text()
    # The demo caller's calls reach Kamailio, which asks the console: each is a row in calls,
    # to a demo business's line (nobody's console is open, so each waits, then overflows).
    _until(lambda: len(_calls(tmp_path / "demo.db")) >= 2, "saw two calls", log)
    dialled = {number for number, _ in _calls(tmp_path / "demo.db")}
    assert dialled <= {
        "+97235551234",
        "+97235552345",
        "+97225553456",
        "+97297556789",
        "+97235554567",
    }
    # The console is a phone: the secretary's page carries the SIP WebSocket in its CSP.
    page = httpx.get(f"http://127.0.0.1:{free_port}/login", timeout=5)
    assert said.group(2) in page.headers["content-security-policy"]
    # Ctrl-C stops the SIP server and the callers with the console.
    demo.send_signal(signal.SIGTERM)
    assert demo.wait(timeout=30) == 0, log.read_text(errors="replace")[-4000:]
    _until(lambda: _udp_port_free(int(said.group(1))), "freed Kamailio's port", log, timeout=15)


def test_without_a_sip_server_installed_the_demo_says_so_and_serves(
    tmp_path: Path, free_port: int, stopped: list[subprocess.Popen[str]]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    demo = _demo(tmp_path, free_port, "--phone", path=str(empty))
    stopped.append(demo)
    log = tmp_path / "demo.log"
    _until(lambda: _serving(free_port), "served", log)
    said = log.read_text()
    assert "No phone in this demo: the SIP stack is not installed (apt-get install kamailio" in said
    assert "deploy/sip/README.md" in said
    assert (
        "connect-src 'self';"
        in httpx.get(f"http://127.0.0.1:{free_port}/login").headers["content-security-policy"]
    )
