"""`mazkira backup FILE` and `mazkira restore FILE`: the app's database, whole and consistent,
while the console runs. SQLite: its online backup (a page-by-page copy that sees one moment,
whatever is written meanwhile; the file is itself a SQLite database). PostgreSQL: `pg_dump`'s
custom format of the app's database and `pg_restore` into it (`postgresql-client`, the server's
major version or newer). The file says which it is by its first bytes, and is restored only into
the same kind of database."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"
TIMEOUT_SECONDS = 3600


class BackupError(Exception):
    """What stopped a backup or a restore, said for the operator."""


@dataclass(frozen=True)
class Done:
    path: Path
    kind: str  # sqlite or postgresql
    size: int


def backup(database_url: str, target: Path) -> Done:
    url = make_url(database_url)
    if target.exists() and target.is_dir():
        raise BackupError(f"{target} is a folder: name the backup file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")  # never a half file under the name
    if url.get_backend_name() == "sqlite":
        source = _sqlite_file(url)
        if not source.exists():
            raise BackupError(f"there is no database at {source}")
        with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(partial)) as copy:
            live.backup(copy)
        kind = "sqlite"
    else:
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--file={partial}",
                f"--dbname={_libpq(url)}",
            ]
        )
        kind = "postgresql"
    partial.replace(target)
    return Done(target, kind, target.stat().st_size)


def restore(database_url: str, source: Path) -> Done:
    """The backup in place of what the database holds now (every table, as it was then)."""
    url = make_url(database_url)
    if not source.is_file():
        raise BackupError(f"there is no backup file at {source}")
    with source.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and not head.startswith(SQLITE_MAGIC):
        raise BackupError(f"{source} is not a SQLite backup, and DATABASE_URL is SQLite")
    if not sqlite and not head.startswith(PG_MAGIC):
        raise BackupError(f"{source} is not a pg_dump backup, and DATABASE_URL is PostgreSQL")
    if sqlite:
        target = _sqlite_file(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(source)) as saved, closing(sqlite3.connect(target)) as live:
            saved.backup(live)  # the live file's pages replaced, its WAL and locks respected
        return Done(source, "sqlite", source.stat().st_size)
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={_libpq(url)}",
            str(source),
        ]
    )
    return Done(source, "postgresql", source.stat().st_size)


def _sqlite_file(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def _libpq(url: URL) -> str:
    """The URL as pg_dump reads it (no SQLAlchemy driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt install postgresql-client)")
    return found


def _run(command: list[str]) -> None:
    try:
        done = subprocess.run(  # noqa: S603 (our own arguments: the tool, flags, the URL)
            command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise BackupError(f"{Path(command[0]).name} took over {TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()
        raise BackupError(
            f"{Path(command[0]).name} failed: {said[-1] if said else done.returncode}"
        )
