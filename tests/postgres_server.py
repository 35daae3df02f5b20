"""A private PostgreSQL (initdb + pg_ctl in a temporary directory, on a free port) for tests that
stop and restart the database: the shared one at 5432 is never touched."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.redis_server import free_port


def postgres_binaries() -> Path:
    """The newest /usr/lib/postgresql/*/bin holding initdb and pg_ctl (or the ones on PATH);
    skips without them, fails under CI=true (they must run there)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None or not (Path(initdb).parent / "pg_ctl").exists():
        message = "initdb and pg_ctl are not installed (apt-get install postgresql)"
        if IN_CI:
            pytest.fail(f"{message}, and CI=true requires them")
        pytest.skip(message)
    return Path(initdb).parent


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


class PrivatePostgres:
    """One cluster with trust authentication on 127.0.0.1:`port`, fsync off (nothing here has
    to survive a power cut, only a restart). PostgreSQL refuses to run as root: then every
    command runs as the `postgres` user."""

    def __init__(self) -> None:
        self.bin = postgres_binaries()
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="mazkira-pg-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "postgres.log"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.fail("running as root needs runuser to start PostgreSQL as postgres")
            self.as_user = [runuser, "-u", "postgres", "--"]
            shutil.chown(self.workdir, "postgres")
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/mazkira"
        self._command(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self.running = False

    def _command(self, name: str, *args: str) -> None:
        result = subprocess.run(
            [*self.as_user, str(self.bin / name), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{name} failed:\n{result.stdout}{result.stderr}\n{log}")

    def _ctl(self, *args: str) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.workdir} -c fsync=off"
        self._command(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args
        )

    def start(self) -> None:
        self._ctl("start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (what a restart by the service manager does); `immediate`
        is a crash."""
        if self.running:
            self._ctl("-m", mode, "stop")
            self.running = False

    def create_database(self) -> None:
        self._command(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mazkira"
        )

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)
