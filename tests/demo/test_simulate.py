"""`mazkira simulate`: its leads reach the console through the real, signed intake endpoints."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from console.base.config import ConfigError, Settings
from console.base.db import Database
from console.cli import main
from console.demo.demo import add_demo_lines
from console.demo.simulate import Customers, Sender, Tally, load_targets, read_targets, send_leads
from models import Contact, Interaction, Lead
from tests.conftest import SECRET
from tests.factories import make_business
from tests.fakes import FakeHttpServer

PUBLIC = "https://console.mazkira.example"
KIND = {"phone": "inbound_call", "sms": "sms", "whatsapp": "whatsapp", "email": "email"}


@pytest.fixture
def forward_to() -> str | None:
    """Where the console forwards calls; without it a call is a call-back at once."""
    return None


@pytest.fixture
def settings(db: Database, forward_to: str | None) -> Settings:
    """No webhook secrets set, so both sides derive them from SECRET_KEY; Twilio signs over
    PUBLIC_URL."""
    return Settings(
        database_url=db.url,
        secret_key=SECRET,
        public_url=PUBLIC,
        twilio_voice_forward_to=forward_to,
    )


async def demo_businesses(db: Database) -> None:
    async with db.transaction() as session:
        for slug in ("cohen-plumbing", "levi-dental"):
            await add_demo_lines(session, await make_business(session, slug=slug))


async def sent(
    client: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    leads: int,
    intake_key: str | None = None,
) -> tuple[Tally, list[str]]:
    async with db.transaction(write=False) as session:
        targets = await load_targets(session)
    if intake_key is not None:
        targets = [replace(target, intake_key=intake_key) for target in targets]
    tally, lines = Tally(), list[str]()
    await send_leads(
        Sender(client, settings, "http://testserver", ring_seconds=(0, 0)),
        Customers(targets, random.Random(5)),
        rate=1000,
        seconds=None,
        limit=leads,
        tally=tally,
        out=lines.append,
    )
    return tally, lines


async def arrivals(db: Database) -> dict[str, int]:
    """Per channel, what the console took in: messages and calls, and web-form leads."""
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            select(Interaction.kind, func.count())
            .where(Interaction.direction == "in")
            .group_by(Interaction.kind)
        )
        kinds: dict[str, int] = {kind: count for kind, count in rows}
        web = await session.scalar(select(func.count()).where(Lead.channel == "web"))
    return {"web": int(web or 0)} | {channel: kinds.get(KIND[channel], 0) for channel in KIND}


@pytest.mark.parametrize("forward_to", ["+97235550000"])  # so calls are answered or missed
async def test_leads_arrive_on_every_channel_and_refusals_say_why(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await demo_businesses(db)
    tally, lines = await sent(client, settings, db, 20)
    assert (tally.leads, tally.refused, tally.errors) == (20, 0, 0), lines
    assert set(tally.by_channel) == {"phone", "sms", "whatsapp", "web", "email"}
    assert await arrivals(db) == tally.by_channel
    assert len(lines) == 20 and all("cohen-plumbing" in x or "levi-dental" in x for x in lines)
    async with db.transaction(write=False) as session:
        missed = await session.scalar(
            select(func.count()).where(Interaction.outcome == "no_answer")
        )
        contacts = await session.scalar(select(func.count()).select_from(Contact))
    assert missed == sum(" missed " in line for line in lines)
    assert missed + sum(" answered " in line for line in lines) == tally.by_channel["phone"]
    assert contacts is not None and contacts < 20  # some people come back

    # Signed with other secrets and a stale intake key: refused, explained, nothing written.
    other = replace(settings, secret_key="another-secret-key-of-another-console-entirely")
    refused, lines = await sent(client, other, db, 10, intake_key="rotated")
    assert (refused.leads, refused.refused, refused.by_channel) == (10, 10, {}), lines
    reasons = " ".join(refused.reasons)
    for name in ("TWILIO_AUTH_TOKEN", "WHATSAPP_APP_SECRET", "EMAIL_WEBHOOK_SIGNING_KEY"):
        assert f"the {name} differs from the server's" in reasons
    assert "intake key" in reasons and "derived from SECRET_KEY" in reasons
    assert await arrivals(db) == tally.by_channel


def test_webhook_secrets_left_unset_are_derived_from_the_secret_key() -> None:
    env = {"DATABASE_URL": "postgresql://db/mazkira", "SECRET_KEY": SECRET}
    bare = Settings.from_env(env)
    derived = [bare.twilio_webhook_token, bare.whatsapp_webhook_secret, bare.email_webhook_key]
    assert len(set(derived)) == 3 and all(len(secret) == 64 for secret in derived)
    # Unset they stay: outbound SMS and the Channels page do not take a derived secret for real.
    assert (bare.twilio_auth_token, bare.whatsapp_app_secret, bare.whatsapp_verify_token) == (
        None,
        None,
        None,
    )
    other = Settings.from_env({**env, "SECRET_KEY": "another-secret-key-entirely"})
    assert other.twilio_webhook_token not in derived
    real = Settings.from_env(
        {
            **env,
            "TWILIO_AUTH_TOKEN": "twilio",
            "WHATSAPP_APP_SECRET": "meta",
            "EMAIL_WEBHOOK_SIGNING_KEY": "mailgun",
        }
    )
    assert [real.twilio_webhook_token, real.whatsapp_webhook_secret, real.email_webhook_key] == [
        "twilio",
        "meta",
        "mailgun",
    ]


async def test_an_empty_database_is_refused_clearly(db: Database) -> None:
    with pytest.raises(ConfigError, match="no active business"):
        await read_targets(Settings(database_url=db.url, secret_key=SECRET), ())


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--rate", "0"], "--rate is leads a second"),
        (["--rate", "fast"], "--rate must be a number"),
        (["--rate", "nan"], "--rate must be a finite number"),
        (["--minutes", "-1"], "--minutes cannot be negative"),
        (["--url", "ftp://console"], "--url must be the console's http(s) address"),
        (["--seed", "x"], "--seed must be a whole number"),
    ],
)
def test_bad_input_exits_2(
    arguments: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'console.db'}")
    assert main(["simulate", *arguments]) == 2
    assert capsys.readouterr().err.startswith(f"mazkira: {message}")


def test_a_missing_database_or_server_exits_2(
    tmp_path: Path,
    free_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = tmp_path / "console.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    assert main(["simulate"]) == 2
    assert capsys.readouterr().err.startswith(f"mazkira: no database at {database}")
    assert not database.exists()  # nothing made where the console's database is not
    database.touch()
    nobody = f"http://127.0.0.1:{free_port}"
    assert main(["simulate", "--url", nobody]) == 2
    assert f"nothing answers at {nobody}" in capsys.readouterr().err


async def test_the_command_sends_to_a_console_on_a_socket(
    app: object,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As a user runs it, with only the console's DATABASE_URL, SECRET_KEY and PUBLIC_URL."""
    await demo_businesses(db)
    for name in ("TWILIO_AUTH_TOKEN", "WHATSAPP_APP_SECRET", "EMAIL_WEBHOOK_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("PUBLIC_URL", PUBLIC)
    server = FakeHttpServer([])
    server.app = app  # type: ignore[assignment]
    async with server:
        command = ["simulate", "--url", server.base_url, "--rate", "50", "--minutes", "0.0051"]
        code = await asyncio.to_thread(main, [*command, "--seed", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"Sending 50 leads a second for 0.0051 minutes to {server.base_url}")
    assert sum(" levi-dental " in x or " cohen-plumbing " in x for x in lines) == 16  # 0 … 0.3 s
    assert "refused: 0, errors (no answer): 0" in out
    assert sum((await arrivals(db)).values()) == 16
