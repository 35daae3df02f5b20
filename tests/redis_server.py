"""A private `redis-server` on a free port, for tests that flush, restart or kill Redis: the
shared Redis of the other tests is never touched."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import IN_CI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_server_binary() -> str:
    """The `redis-server` on PATH; skips without one, fails under CI=true (it must run there)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not on PATH (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires it")
        pytest.skip(message)
    return binary


class PrivateRedis:
    """One `redis-server --save "" --appendonly no` in `workdir`: nothing survives a restart,
    like a Redis that was flushed or replaced."""

    def __init__(self, workdir: Path) -> None:
        self.binary = redis_server_binary()
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except RedisConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on {self.port}:\n{self._log_text()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server (SIGKILL to make it vanish at once); a no-op when it is not running."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def restart(self) -> None:
        """Kill the server and start an empty one on the same port."""
        self.stop(signal.SIGKILL)
        self.start()

    def client(self) -> Redis:
        return Redis.from_url(self.url, socket_timeout=2)

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def _log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else "(no log)"
