"""`mazkira check`: the settings read as an operator would, in plain words: what is missing or
wrong, what works and how each part will behave. `mazkira serve` runs it at start, prints a
short summary, and refuses to start on what would make every request fail (the database or
Redis out of reach, a schema behind the code)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from console.base.config import Settings
from console.base.db import Database
from console.base.health import TIMEOUT_SECONDS, check
from console.base.migrate import pending

OK, NOTE, WARNING, PROBLEM = "ok", "note", "warning", "problem"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Finding:
    level: str  # ok, note, warning or problem
    part: str
    text: str
    fatal: bool = False  # serve would fail every request: it does not start


@dataclass
class Checkup:
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, part: str, text: str, *, fatal: bool = False) -> None:
        self.findings.append(Finding(level, part, text, fatal))

    def count(self, level: str) -> int:
        return sum(1 for finding in self.findings if finding.level == level)

    @property
    def fatal(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fatal]

    def report(self) -> str:
        marks = {OK: "ok", NOTE: "--", WARNING: "!!", PROBLEM: "XX"}
        lines = [f"[{marks[f.level]}] {f.part}: {f.text}" for f in self.findings]
        return "\n".join([*lines, self.summary()])

    def summary(self) -> str:
        problems, warnings = self.count(PROBLEM), self.count(WARNING)
        if not problems and not warnings:
            return "mazkira check: everything needed is set and answering."
        return (
            f"mazkira check: {problems} problem{'s' * (problems != 1)},"
            f" {warnings} warning{'s' * (warnings != 1)}."
        )


async def run(settings: Settings, *, reach: bool = True) -> Checkup:
    """Every check; `reach=False` reads the settings only (no connection is opened)."""
    checkup = Checkup()
    _secret(checkup, settings)
    _public_url(checkup, settings)
    _mail(checkup, settings)
    _twilio(checkup, settings)
    _whatsapp(checkup, settings)
    _metrics(checkup, settings)
    if reach:
        await _database_and_redis(checkup, settings)
    await _sip(checkup, settings, reach=reach)
    return checkup


def _secret(checkup: Checkup, settings: Settings) -> None:
    if len(settings.secret_key) < MIN_SECRET_LENGTH:
        checkup.add(
            PROBLEM,
            "SECRET_KEY",
            f"shorter than {MIN_SECRET_LENGTH} characters: sessions and signed links can be"
            " guessed; set a long random one (python -c 'import secrets;"
            " print(secrets.token_urlsafe(48))')",
        )
    else:
        checkup.add(OK, "SECRET_KEY", "set (or kept in the file beside the SQLite database)")


def _public_url(checkup: Checkup, settings: Settings) -> None:
    if not settings.public_url:
        checkup.add(
            WARNING,
            "PUBLIC_URL",
            "not set: links in e-mails and messages (task links, surveys, on-call pages) point"
            " nowhere useful, and behind a proxy Twilio's signatures over the URL fail; set the"
            " address people and providers reach the console at, e.g. https://console.example.com",
        )
        return
    parts = urlsplit(settings.public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        checkup.add(PROBLEM, "PUBLIC_URL", f"{settings.public_url!r} is not an http(s) address")
    elif parts.scheme == "https" and not settings.https:
        checkup.add(
            WARNING,
            "HTTPS",
            "PUBLIC_URL is https but HTTPS is not set: cookies go without the Secure flag",
        )
    else:
        checkup.add(OK, "PUBLIC_URL", settings.public_url)


def _mail(checkup: Checkup, settings: Settings) -> None:
    if not settings.smtp_url:
        checkup.add(
            WARNING,
            "SMTP_URL",
            "not set: e-mail (breach notices, digests, hand-offs to owners) is not sent; set"
            " smtp://user:password@host:587?from=agency@example.com",
        )
        return
    parts = urlsplit(settings.smtp_url)
    sender = parse_qs(parts.query).get("from", [""])[0]
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        checkup.add(PROBLEM, "SMTP_URL", "must look like smtp://user:password@host:587?from=...")
    elif not sender:
        checkup.add(PROBLEM, "SMTP_URL", "names no sender: add ?from=agency@example.com")
    else:
        checkup.add(OK, "SMTP_URL", f"mail goes through {parts.hostname} from {sender}")


def _twilio(checkup: Checkup, settings: Settings) -> None:
    values = {
        "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
        "TWILIO_FROM": settings.twilio_from,
    }
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(values):
        checkup.add(WARNING, "SMS", "Twilio is not set: SMS (and WhatsApp through Twilio) fail")
    elif missing:
        checkup.add(PROBLEM, "SMS", f"Twilio is half set: {', '.join(missing)} missing")
    else:
        checkup.add(OK, "SMS", f"Twilio, sending from {settings.twilio_from}")


def _whatsapp(checkup: Checkup, settings: Settings) -> None:
    token, number = settings.whatsapp_access_token, settings.whatsapp_phone_number_id
    if not token and not number:
        checkup.add(NOTE, "WhatsApp", "Meta's Cloud API is not set (WhatsApp through Twilio only)")
    elif not (token and number):
        missing = "WHATSAPP_PHONE_NUMBER_ID" if token else "WHATSAPP_ACCESS_TOKEN"
        checkup.add(PROBLEM, "WhatsApp", f"half set: {missing} missing")
    elif not settings.whatsapp_app_secret:
        checkup.add(
            PROBLEM,
            "WhatsApp",
            "WHATSAPP_APP_SECRET is not set: Meta's webhooks (incoming messages) are refused",
        )
    else:
        checkup.add(OK, "WhatsApp", "Meta's Cloud API, webhooks checked with the app secret")


def _metrics(checkup: Checkup, settings: Settings) -> None:
    if not settings.metrics_token:
        checkup.add(NOTE, "METRICS_TOKEN", "not set: /metrics answers 404")
    elif len(settings.metrics_token) < 16:
        checkup.add(WARNING, "METRICS_TOKEN", "shorter than 16 characters")
    else:
        checkup.add(OK, "METRICS_TOKEN", "set: /metrics answers its bearer")


async def _database_and_redis(checkup: Checkup, settings: Settings) -> None:
    shown = make_url(settings.database_url).render_as_string(hide_password=True)
    db = Database(settings.database_url)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        state = await check(db, redis)
        if state["database"] != "ok":
            checkup.add(PROBLEM, "DATABASE_URL", f"{shown} does not answer", fatal=True)
        else:
            checkup.add(OK, "DATABASE_URL", f"{shown} answers")
            await _migrations(checkup, db, settings)
        if redis is None:
            checkup.add(
                NOTE,
                "REDIS_URL",
                "not set: jobs run inside `mazkira serve`, which must then be one process",
            )
        elif state["redis"] != "ok":
            checkup.add(PROBLEM, "REDIS_URL", f"{settings.redis_url} does not answer", fatal=True)
        else:
            checkup.add(OK, "REDIS_URL", "answers: run `mazkira worker` beside the web processes")
    finally:
        if redis is not None:
            await redis.aclose()
        await db.dispose()


async def _migrations(checkup: Checkup, db: Database, settings: Settings) -> None:
    try:
        behind = await asyncio.wait_for(pending(db), TIMEOUT_SECONDS * 5)
    except Exception as error:  # a database that answers but cannot be read
        checkup.add(PROBLEM, "migrations", f"could not be read ({error})", fatal=True)
        return
    if behind is None:
        checkup.add(OK, "migrations", "the schema is current")
    elif settings.is_sqlite:
        checkup.add(NOTE, "migrations", f"{behind}; `mazkira serve` does it at start on SQLite")
    else:
        checkup.add(PROBLEM, "migrations", behind, fatal=True)


async def _sip(checkup: Checkup, settings: Settings, *, reach: bool) -> None:
    if not settings.sip_secret:
        checkup.add(
            NOTE,
            "phone",
            "SIP_SECRET is not set: no phone in the console (see deploy/sip/README.md)",
        )
        return
    if not settings.sip_ws_url:
        checkup.add(PROBLEM, "phone", "SIP_SECRET is set but SIP_WS_URL is not")
        return
    parts = urlsplit(settings.sip_ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        checkup.add(PROBLEM, "SIP_WS_URL", f"{settings.sip_ws_url!r} is not a ws(s):// address")
        return
    if not reach:
        return
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port), TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError):
        checkup.add(
            WARNING,
            "phone",
            f"the SIP server's WebSocket {parts.hostname}:{port} does not answer: consoles show"
            " the phone offline; every other channel works",
        )
        return
    writer.close()
    checkup.add(OK, "phone", f"the SIP server answers at {parts.hostname}:{port}")
