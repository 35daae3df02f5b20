"""The `mazkira` command, run as a user runs it: a separate process on a real database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from console.base.config import normalise_database_url

MAZKIRA = [sys.executable, "-m", "console.cli"]


def mazkira(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MAZKIRA, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_setup_commands_on_sqlite(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'agency.db'}"}
    env.pop("SECRET_KEY", None)
    assert mazkira(env, "migrate").returncode == 0
    assert mazkira(env, "migrate").returncode == 0  # safe to run twice
    secret = tmp_path / "agency.secret"
    assert secret.exists() and len(secret.read_text()) >= 40  # generated, kept beside the db
    assert secret.stat().st_mode & 0o077 == 0

    created = mazkira(env, "create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    assert created.returncode == 0, created.stderr
    lines = dict(line.split(": ", 1) for line in created.stdout.strip().splitlines())
    assert len(lines["business_id"]) == 36 and len(lines["intake_key"]) >= 40

    user = mazkira(
        env,
        "create-user",
        "--email",
        "Michal@Example.test",
        "--password",
        "long-enough",
        "--role",
        "secretary",
        "--business",
        "cohen",
    )
    assert user.returncode == 0, user.stderr
    with sqlite3.connect(tmp_path / "agency.db") as agency_db:
        (hashed,) = agency_db.execute("SELECT password_hash FROM users").fetchone()
    # argon2id at the library's recommended cost (tests/conftest.py cheapens only its own process)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), hashed
    assert mazkira(env, "intake-key", "--business", "cohen").stdout.strip() == lines["intake_key"]
    rotated = mazkira(env, "intake-key", "--business", "cohen", "--rotate").stdout.strip()
    assert rotated and rotated != lines["intake_key"]
    assert mazkira(env, "intake-key", "--business", "cohen").stdout.strip() == rotated
    promise = mazkira(env, "set-sla", "--business", "cohen", "--channel", "phone", "--minutes", "3")
    assert promise.returncode == 0 and promise.stdout.strip() == "ok", promise.stderr
    assert mazkira(env, "create-business", "--slug", "levi", "--name", "x").returncode == 0
    for channel, address, stored in [
        ("phone", "03-555-1234", "phone +97235551234"),
        ("sms", "+972 3 555 1234", "sms +97235551234"),
        ("whatsapp", "106540352242922", "whatsapp 106540352242922"),
        ("email", "Cohen@In.Example.com", "email cohen@in.example.com"),
        ("email", "cohen@in.example.com", "email cohen@in.example.com"),  # again: a no-op
    ]:
        added = mazkira(
            env, "add-line", "--business", "cohen", "--channel", channel, "--address", address
        )
        assert added.returncode == 0 and added.stdout.strip() == stored, added.stderr

    refusals = [
        ("create-business", "--slug", "cohen", "--name", "again"),
        ("create-business", "--slug", "Bad Slug!", "--name", "x"),
        ("create-business", "--slug", "tz", "--name", "x", "--timezone", "Mars/Olympus"),
        (
            "create-user",
            "--email",
            "michal@example.test",
            "--password",
            "long-enough",
            "--role",
            "owner",
        ),
        ("create-user", "--email", "x@example.test", "--password", "short", "--role", "admin"),
        (
            "create-user",
            "--email",
            "y@example.test",
            "--password",
            "long-enough",
            "--role",
            "owner",
            "--business",
            "nope",
        ),
        ("intake-key", "--business", "nope"),
        ("set-sla", "--business", "cohen", "--minutes", "0"),
        ("set-sla", "--business", "cohen", "--minutes", "5", "--warn", "150"),
        ("set-sla", "--business", "cohen", "--minutes", "5", "--warn", "half"),
        ("set-sla", "--business", "cohen", "--minutes", "5", "--channel", "fax"),
        # a line belongs to one business only; addresses must be what the channel uses
        ("add-line", "--business", "levi", "--channel", "sms", "--address", "035551234"),
        ("add-line", "--business", "cohen", "--channel", "phone", "--address", "050-1234567"),
        ("add-line", "--business", "cohen", "--channel", "whatsapp", "--address", "whatsapp:050"),
        ("add-line", "--business", "cohen", "--channel", "whatsapp", "--address", "wa-line"),
        ("add-line", "--business", "cohen", "--channel", "email", "--address", "not-mail"),
        ("add-line", "--business", "nope", "--channel", "email", "--address", "a@b.example"),
    ]
    for args in refusals:
        result = mazkira(env, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert result.stderr.startswith("mazkira: "), result.stderr
        assert "Traceback" not in result.stderr


def test_set_sla_is_audited_as_the_sla_page_is(tmp_path: Path) -> None:
    """The page's audit record, with the command line as who and where."""
    database = tmp_path / "agency.db"
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    assert mazkira(env, "migrate").returncode == 0
    created = mazkira(env, "create-business", "--slug", "cohen", "--name", "אינסטלציה כהן")
    business_id = uuid.UUID(created.stdout.split("business_id: ")[1].split()[0])
    promise = mazkira(env, "set-sla", "--business", "cohen", "--channel", "phone", "--minutes", "3")
    assert promise.returncode == 0, promise.stderr
    refused = mazkira(env, "set-sla", "--business", "cohen", "--minutes", "0")
    assert refused.returncode == 2, refused.stderr  # refused, so not recorded either

    with sqlite3.connect(database) as connection:
        [row] = connection.execute(
            "SELECT action, actor_id, actor_email, address, business_id, subject_type,"
            " subject_id, details FROM audit_events"
        ).fetchall()
    action, actor_id, actor_email, address, business, subject_type, subject_id, details = row
    assert (action, actor_id, actor_email, address) == ("sla.policy_set", None, "cli", "cli")
    assert uuid.UUID(business) == uuid.UUID(subject_id) == business_id
    assert subject_type == "business" and json.loads(details) == {"minutes": 3}


def test_migrate_on_postgres_twice(private_postgres_url: str) -> None:
    env = {"DATABASE_URL": private_postgres_url, "SECRET_KEY": "x" * 40}
    for _ in range(2):
        result = mazkira(env, "migrate")
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("url", ["mysql://x", "nonsense"])
def test_bad_database_url_is_a_clear_error(url: str) -> None:
    result = mazkira({"DATABASE_URL": url}, "migrate")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    with pytest.raises(Exception, match="DATABASE_URL"):
        normalise_database_url(url)
