"""Real `mazkira serve` processes on free ports, for tests that need a socket or a restart."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# One SQLite database brought up to date by a real `mazkira migrate` per test process, copied for
# every later server's "migrate" (each took 2.5 s of CPU, dozens of times a run). The command itself
# is tested in tests/test_cli.py.
_migrated: list[Path] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`mazkira` commands and a served console on a private SQLite database."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{workdir / 'console.db'}",
            **(env or {}),
        }
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "serve.log"

    def run(self, *args: str) -> str:
        target = self._sqlite_file()
        if args == ("migrate",) and target is not None and not target.exists():
            if not _migrated:
                folder = tempfile.mkdtemp(prefix="mazkira-migrated-")
                atexit.register(shutil.rmtree, folder, ignore_errors=True)
                template = Path(folder) / "console.db"
                self._command(*args, env={**self.env, "DATABASE_URL": f"sqlite:///{template}"})
                assert not template.with_name("console.db-wal").exists()
                _migrated.append(template)
            shutil.copyfile(_migrated[0], target)
            return ""
        return self._command(*args, env=self.env)

    def _sqlite_file(self) -> Path | None:
        url = self.env["DATABASE_URL"]
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None

    def _command(self, *args: str, env: dict[str, str]) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "console.cli", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console.cli", "serve", "--port", str(self.port)],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        # generous: on a loaded machine (tests of several people on two cores) a start has
        # taken over 30 s; a healthy server answers long before and ends the wait
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"mazkira serve did not start:\n{self.log.read_text()}")

    def stop(self) -> int | None:
        """SIGTERM, as a process manager stops it; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        code = self.process.returncode
        self.process = None
        return code
