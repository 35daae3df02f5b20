"""Intake under load, channel by channel: `python -m bench.intake [--db sqlite|postgres]
[--channel web|api|twilio|whatsapp|email|all]... [--rate R] [--seconds S] [--existing N]`.

Two servers run side by side, each a uvicorn subprocess with the options of `mazkira serve`:
the console itself (`mazkira serve` on a fresh database: a SQLite file, or the PostgreSQL
database `mazkira_bench_intake`, made when missing) and a bare Starlette app whose one route
parses a JSON body and answers 201 with JSON (`bench/ceiling.py`, the framework's ceiling,
measured once a run, with web forms). The ceiling first, then each channel in turn (all five
unless `--channel` names some), is loaded the same way:

- at a fixed offered rate (`--rate`, 500/s; open loop): requests leave on a schedule whatever the
  answers, over a pool of keep-alive connections, and each latency counts from the moment its
  request was due, so a stalled server cannot hide behind a waiting client;
- at maximum throughput (closed loop): `--connections` keep-alive connections each send the next
  request as soon as the answer to the last one is in.

Each phase is bounded in time, so a slow channel costs the run no more than a fast one: a
request still waiting for a free connection a second after its phase's schedule ended is not
sent (`unsent`; its latency, counted until then, is a lower bound, and so are the percentiles
when there is any), and an answer not in after 30 s counts as status 0.

The load is made in this process by a raw asyncio HTTP/1.1 client (uvloop when installed) that
writes each request in one call and reads back only the status, the headers and the body's
length: a few percent of the server's cost per request, so the figures are the server's (the
client's own CPU share is printed as `client_cpu`). Every request is unique and is what the
channel's real sender sends, signed as it signs (the webhooks built by
console/demo/webhook_payloads.py, as `mazkira simulate` builds them):

- web: a business's site posts `POST /intake/{slug}/form` with its `X-Intake-Key`, a unique
  `external_id`, a Hebrew name, a valid Israeli mobile number written the ways people write
  them, sometimes an e-mail, and a message;
- api: an integration posts `POST /api/v1/leads` with `Authorization: Bearer` (the personal API
  token of an admin, made for the run), a JSON lead and an `Idempotency-Key` of its own;
- twilio: Twilio posts an incoming SMS to `POST /intake/twilio/sms` as form fields (a MessageSid
  of its own) with `X-Twilio-Signature` over PUBLIC_URL's address and the sorted fields;
- whatsapp: Meta posts its Cloud API webhook to `POST /intake/whatsapp`, one text message (a
  wamid of its own) per post, with `X-Hub-Signature-256` over the exact bytes;
- email: a Mailgun route forwards a mail to `POST /intake/email` as form fields with a fresh
  timestamp and token signed with the webhook signing key, and a Message-Id of its own.

Ten businesses with their default hours, each with an SMS number, a WhatsApp phone_number_id
and an e-mail address as its lines; every tenth round one of a business's callers writes to it
again (a message continues that caller's open lead). The console is given the providers'
webhook secrets and PUBLIC_URL, no provider account (nothing is sent out), and limits out of
the load's reach (`bench.intake_env`: web forms per key and address, API calls per token; still
counted on every request). The tables start empty, or with `--existing N` month-old leads
(closed; a contact per two leads), to show that an arrival's cost does not grow with what the
agency has gathered. On PostgreSQL the tables are analyzed after each warm-up, as autovacuum
would have done them in the first minute of a real deployment (`analyze`).

Every answer must be its channel's success status (201; 200 for Twilio's and Meta's webhooks):
any other is an error, counted per channel. After the run the rows are counted (web forms and
API leads as leads, channels `web` and `phone`; messages as incoming interactions of their
kind), and each channel must have stored every arrival it answered with success exactly once:
as many rows as successes (no fewer, no more than were sent, where some got no answer), no key
twice. The run exits with status 1 when one did not.

Printed: each phase as it ends, then a line per channel beside the targets (every channel
≥ 1,000 arrivals/s flat out and p99 < 50 ms at 500/s; the web form ≥ 0.2 of the ceiling), and
last one JSON object: `db`, `existing`, `ceiling_rps`, the web form's `intake_rps`, `ratio`,
`p50_ms` and `p99_ms` (null without it), and `channels`, by channel: `rps` flat out (answers
of success a second: a refusal is not an arrival), its `ratio` to the ceiling, `p50_ms` /
`p99_ms` at the fixed rate, `errors`, `unsent`, `sent`, `stored` and `stored_once`.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import phonenumbers
from sqlalchemy import ColumnElement, delete, distinct, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import InstrumentedAttribute

from bench import intake_env, loop_factory
from bench.inbox import create_database
from console.base.config import normalise_database_url
from console.base.db import Database
from console.base.migrate import upgrade
from console.channels import lines
from console.demo.webhook_payloads import (
    mailgun_forward_form,
    meta_text_message_payload,
    new_sid,
    signed_meta_body,
    signed_twilio_form,
    twilio_sms_params,
)
from console.intake import arrivals
from console.intake.web_forms import form_arrival
from console.people import accounts, api_tokens
from models import Interaction, Lead, LeadAlarm

ROOT = Path(__file__).resolve().parent.parent
clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
POSTGRES = os.environ.get(
    "BENCH_INTAKE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/mazkira_bench_intake"
)
BUSINESSES = 10
CHANNELS = ("web", "api", "twilio", "whatsapp", "email")
SUCCESS = {"web": 201, "api": 201, "twilio": 200, "whatsapp": 200, "email": 201}
NO_ANSWER = 0  # the status counted for a request that got none
ANSWER_TIMEOUT = 30.0  # seconds
LATE = 1.0  # seconds: a request still waiting for a connection this long after its phase's
# schedule ended is not sent
# The targets printed beside the figures.
TARGET_RPS = 1_000
TARGET_P99_MS = 50
TARGET_RATIO = 0.2
PUBLIC_URL = "https://console.bench.example"  # where the providers believe they post
FIRST_NAMES = (
    "דנה", "יוסי", "מיכל", "אבי", "נועה", "משה", "שירה", "דוד", "רחל", "איתי",
    "תמר", "עומר", "יעל", "אורי", "רונית", "חיים", "ליאור", "שרה", "עידן", "מאיה",
)  # fmt: skip
LAST_NAMES = (
    "כהן", "לוי", "מזרחי", "פרץ", "ביטון", "דהן", "אברהם", "פרידמן", "אזולאי", "מלכה",
    "גבאי", "שפירא", "חדד", "קצב", "אוחיון", "בן דוד", "אלון", "רוזנברג",
)  # fmt: skip
SUBJECTS = ("נזילה במטבח", "הצעת מחיר", "קביעת תור", "שעות פעילות", "תיקון דחוף", "פרטים")
MESSAGES = (
    "נזילה במטבח, אפשר לחזור אליי היום?",
    "מבקש הצעת מחיר להתקנת מזגן בסלון",
    "רציתי לקבוע תור לשבוע הבא, עדיף בבוקר",
    "האם אתם עובדים גם ביום שישי?",
    "צריך טכנאי דחוף, אין מים חמים בכלל",
    "ראיתי את המודעה שלכם באינטרנט ואשמח לפרטים",
)
MOBILE_PREFIXES = ("050", "052", "053", "054", "055", "058")


# --- what the senders send --------------------------------------------------------------------


def mobile_numbers(count: int, rng: random.Random) -> list[str]:
    """Valid Israeli mobile numbers (an assigned range, as the console requires), national form."""
    found: list[str] = []
    while len(found) < count:
        national = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(2_000_000, 10_000_000):07d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(national, "IL")):
            found.append(national)
    return found


def written(national: str, n: int) -> str:
    """The ways people type a number: 054-2345678, 0542345678, +972 54-234-5678."""
    style = n % 3
    if style == 0:
        return f"{national[:3]}-{national[3:]}"
    if style == 1:
        return national
    return f"+972 {national[1:3]}-{national[3:6]}-{national[6:]}"


def caller(n: int, businesses: int) -> int:
    """Who sends request n, which goes to business n % businesses: in every tenth round of the
    businesses someone who wrote to the same business 101 rounds before (a second before, at a
    thousand a second), else someone new."""
    again = 101 * businesses
    return n - again if (n // businesses) % 10 == 9 and n >= again else n


def full_name(who: int) -> str:
    return f"{FIRST_NAMES[who % 20]} {LAST_NAMES[who % 17]}"


def post(host: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """A POST as bytes on the wire."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    start = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    return start.encode() + body


@dataclass
class Forms:
    """Request n, as bytes on the wire: one business's form, unique by external_id."""

    businesses: list[tuple[str, str]]  # (slug, intake key)
    host: str
    run: str = field(default_factory=lambda: f"{time.time_ns():x}")
    phones: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(5)
        self.phones = self.phones or mobile_numbers(20_000, rng)
        self.heads = [
            (
                f"POST /intake/{slug}/form HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/json\r\nX-Intake-Key: {key}\r\n"
            ).encode()
            for slug, key in self.businesses
        ]

    def __call__(self, n: int) -> bytes:
        business = n % len(self.businesses)
        who = caller(n, len(self.businesses))
        form: dict[str, str] = {
            "name": full_name(who),
            "phone": written(self.phones[who % len(self.phones)], n),
            "message": MESSAGES[n % len(MESSAGES)],
            "source": "אתר",
            "external_id": f"{self.run}-{n}",
        }
        if n % 4 == 0:
            form["email"] = f"lead{who}@example.co.il"
        body = json.dumps(form, ensure_ascii=False).encode()
        return b"%sContent-Length: %d\r\n\r\n%s" % (self.heads[business], len(body), body)


@dataclass(frozen=True)
class Target:
    """A business as its senders know it: the web form's slug and key, its id (for the API),
    and its lines."""

    slug: str
    intake_key: str
    id: str
    sms: str  # E.164, Twilio's `To`
    whatsapp: str  # Meta's phone_number_id
    email: str  # the address a Mailgun route forwards for


@dataclass(frozen=True)
class Agency:
    targets: list[Target]
    api_token: str

    @property
    def forms(self) -> list[tuple[str, str]]:
        return [(target.slug, target.intake_key) for target in self.targets]


@dataclass(frozen=True)
class Signing:
    """The secrets the providers sign with, and the address they post to, as the console is
    told them (no account: nothing the console sends leaves for a real provider)."""

    twilio_auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    whatsapp_app_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    mailgun_signing_key: str = field(default_factory=lambda: "key-" + secrets.token_hex(16))
    public_url: str = PUBLIC_URL

    def env(self) -> dict[str, str]:
        return {
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "WHATSAPP_APP_SECRET": self.whatsapp_app_secret,
            "EMAIL_WEBHOOK_SIGNING_KEY": self.mailgun_signing_key,
            "PUBLIC_URL": self.public_url,
        }

    @property
    def host(self) -> str:
        return urlsplit(self.public_url).netloc


class Sender:
    """Request n of one channel to business n % businesses, from `caller(n)`; each channel's
    callers are numbers of their own (a caller who also writes on another channel would
    continue the lead made there)."""

    def __init__(self, agency: Agency, signing: Signing, host: str, seed: int) -> None:
        self.agency, self.signing, self.host = agency, signing, host
        self.phones = mobile_numbers(20_000, random.Random(seed))

    def __call__(self, n: int) -> bytes:
        target = self.agency.targets[n % len(self.agency.targets)]
        who = caller(n, len(self.agency.targets))
        return self.make(n, target, who, self.phones[who % len(self.phones)])

    def make(self, n: int, target: Target, who: int, national: str) -> bytes:
        raise NotImplementedError


class ApiLeads(Sender):
    """An integration's lead (a CRM's), `POST /api/v1/leads`, with an Idempotency-Key."""

    def make(self, n: int, target: Target, who: int, national: str) -> bytes:
        lead = {
            "business_id": target.id,
            "name": full_name(who),
            "phone": written(national, n),
            "channel": "phone",
            "subject": SUBJECTS[n % len(SUBJECTS)],
            "message": MESSAGES[n % len(MESSAGES)],
            "source": "CRM",
        }
        if n % 4 == 0:
            lead["email"] = f"lead{who}@example.com"
        headers = {
            "Authorization": f"Bearer {self.agency.api_token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
        }
        body = json.dumps(lead, ensure_ascii=False).encode()
        return post(self.host, "/api/v1/leads", headers, body)


class TwilioSms(Sender):
    """An incoming SMS as Twilio posts it, signed over PUBLIC_URL's address."""

    def __init__(self, agency: Agency, signing: Signing, host: str, seed: int) -> None:
        super().__init__(agency, signing, host, seed)
        self.account_sid = new_sid("AC")

    def make(self, n: int, target: Target, who: int, national: str) -> bytes:
        fields = twilio_sms_params(
            from_="+972" + national[1:],
            to=target.sms,
            body=MESSAGES[n % len(MESSAGES)],
            account_sid=self.account_sid,
        )
        url = self.signing.public_url + "/intake/twilio/sms"
        signed = signed_twilio_form(url, self.signing.twilio_auth_token, fields)
        return post(self.host, signed.path, signed.headers, signed.body)


class WhatsAppMessages(Sender):
    """One text message per post of Meta's Cloud API webhook, signed over its bytes."""

    def make(self, n: int, target: Target, who: int, national: str) -> bytes:
        payload = meta_text_message_payload(
            from_wa_id="972" + national[1:],
            body=MESSAGES[n % len(MESSAGES)],
            profile_name=full_name(who),
            phone_number_id=target.whatsapp,
            display_phone_number=target.sms.removeprefix("+"),
        )
        signed = signed_meta_body(self.signing.whatsapp_app_secret, payload)
        return post(self.host, "/intake/whatsapp", signed.headers, signed.body)


class MailgunMails(Sender):
    """A mail to the business's address, as a Mailgun route forwards it, freshly signed."""

    def make(self, n: int, target: Target, who: int, national: str) -> bytes:
        sender = f"lead{who}@example.com"
        name = full_name(who)
        signed = mailgun_forward_form(
            self.signing.public_url + "/intake/email",
            self.signing.mailgun_signing_key,
            sender=sender,
            recipient=target.email,
            subject=SUBJECTS[n % len(SUBJECTS)],
            body_plain=f"שלום,\n\n{MESSAGES[n % len(MESSAGES)]}\n\nתודה,\n{name}\n{national}\n",
            from_header=f"{name} <{sender}>",
        )
        return post(self.host, signed.path, signed.headers, signed.body)


def senders(agency: Agency, signing: Signing, host: str) -> dict[str, Callable[[int], bytes]]:
    """Each channel's requests; the providers' name the host they believe they post to."""
    return {
        "web": Forms(agency.forms, host=host),
        "api": ApiLeads(agency, signing, host, seed=6),
        "twilio": TwilioSms(agency, signing, signing.host, seed=7),
        "whatsapp": WhatsAppMessages(agency, signing, signing.host, seed=8),
        "email": MailgunMails(agency, signing, signing.host, seed=9),
    }


# --- the client -------------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request at a time, answered with its status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        _, connection = await asyncio.get_running_loop().create_connection(cls, host, port)
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        length, at = 0, head.find(b"\r\ncontent-length:")
        if at >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.buffer) < end + 4 + length:
            return
        del self.buffer[: end + 4 + length]
        waiter, self.waiter = self.waiter, None
        waiter.set_result(int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def _time_out(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(TimeoutError())
        self.close()

    async def request(self, data: bytes) -> int:
        """The answer's status, or NO_ANSWER (and the connection is closed)."""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        timer = loop.call_later(ANSWER_TIMEOUT, self._time_out)
        self.transport.write(data)
        try:
            return await self.waiter
        except (ConnectionError, TimeoutError):
            self.close()
            return NO_ANSWER
        finally:
            timer.cancel()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass
class Phase:
    requests: int  # sent (each answered, or counted as NO_ANSWER)
    seconds: float
    latencies_ms: list[float]  # of the requests sent, and of those not sent, until then
    statuses: Counter[int]
    client_cpu: float  # share of one core the client used
    success: int = 201
    unsent: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)

        def at(share: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 2)

        return {
            "rps": round(self.statuses[self.success] / self.seconds, 1),  # arrivals, not refusals
            "p50_ms": at(0.5),
            "p99_ms": at(0.99),
            "max_ms": round(ordered[-1], 2),
            "statuses": dict(self.statuses),
            "errors": self.requests - self.statuses[self.success],
            "unsent": self.unsent,
            "client_cpu": round(self.client_cpu, 2),
        }


class Load:
    """Requests numbered from 0 on, made by `make` when they are sent, against one server;
    `statuses` counts the answers of every phase."""

    def __init__(self, port: int, make: Callable[[int], bytes], success: int = 201) -> None:
        self.port = port
        self.make = make
        self.success = success
        self.sent = 0
        self.statuses: Counter[int] = Counter()

    def next_request(self) -> bytes:
        self.sent += 1
        return self.make(self.sent - 1)

    async def connect(self) -> Connection:
        return await Connection.open("127.0.0.1", self.port)

    async def at_rate(
        self, rate: float, seconds: float, connections: int = 64, late: float | None = None
    ) -> Phase:
        """Open loop: request i is due at start + i/rate; its latency counts from then. With
        `late`, a request that has no connection `late` seconds after the schedule's end is
        not sent."""
        idle: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(connections):
            idle.put_nowait(await self.connect())
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        unsent = 0
        total = max(1, int(rate * seconds))
        cpu, start = time.process_time(), clock() + 0.01
        cut = start + seconds + late if late is not None else float("inf")

        async def one(due: float) -> None:
            nonlocal unsent
            connection = await idle.get()
            if clock() > cut:
                unsent += 1
            else:
                statuses[await connection.request(self.next_request())] += 1
            latencies.append((clock() - due) * 1000)
            idle.put_nowait(await self.connect() if connection.closed else connection)

        tasks = []
        for i in range(total):
            due = start + i / rate
            if (wait := due - clock()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = clock() - start
        cpu = time.process_time() - cpu
        while not idle.empty():
            idle.get_nowait().close()
        self.statuses.update(statuses)
        answered = total - unsent
        return Phase(answered, elapsed, latencies, statuses, cpu / elapsed, self.success, unsent)

    async def flat_out(self, seconds: float, connections: int) -> Phase:
        """Closed loop: each connection sends its next request when its answer is in."""
        pool = [await self.connect() for _ in range(connections)]
        latencies: list[float] = []
        statuses: Counter[int] = Counter()
        cpu, start = time.process_time(), clock()
        stop = start + seconds

        async def keep_sending(connection: Connection) -> None:
            while clock() < stop:
                data = self.next_request()
                sent = clock()
                statuses[await connection.request(data)] += 1
                latencies.append((clock() - sent) * 1000)
                if connection.closed:
                    connection = await self.connect()
            connection.close()

        await asyncio.gather(*(keep_sending(c) for c in pool))
        elapsed = clock() - start
        cpu = time.process_time() - cpu
        self.statuses.update(statuses)
        return Phase(len(latencies), elapsed, latencies, statuses, cpu / elapsed, self.success)


async def measure(
    load: Load,
    *,
    rate: float,
    seconds: float,
    connections: int,
    warmup: float,
    warmed: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """Warm up, then the fixed rate, then maximum throughput; the collector stays out of it."""
    await load.at_rate(rate, warmup, late=LATE)
    if warmed is not None:
        await warmed()
    gc.collect()
    gc.disable()
    try:
        fixed = await load.at_rate(rate, seconds, late=LATE)
        flat = await load.flat_out(seconds, connections)
    finally:
        gc.enable()
    return {"fixed": fixed.summary(), "max": flat.summary()}


# --- the servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A uvicorn subprocess (`mazkira serve` or the ceiling), stopped with SIGTERM."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.command = [sys.executable, "-m", module, *args, "--port", str(self.port)]
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )

    async def ready(self) -> None:
        """uvicorn binds its socket once the app's start-up is done."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            try:
                (await Connection.open("127.0.0.1", self.port)).close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.command} did not start:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


# --- the run ----------------------------------------------------------------------------------


async def fresh_database(kind: str, work: Path) -> str:
    """An empty, migrated database for this run; its URL as `mazkira serve` reads it."""
    if kind == "sqlite":
        url = f"sqlite:///{work / 'intake.db'}"
    else:
        url = make_url(POSTGRES).render_as_string(hide_password=False)
        await create_database(normalise_database_url(url))
        db = Database(normalise_database_url(url))
        async with db.engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await db.dispose()
    db = Database(normalise_database_url(url))
    await upgrade(db)
    await db.dispose()
    return url


async def add_businesses(url: str, count: int) -> list[tuple[str, str]]:
    db = Database(normalise_database_url(url))
    made = []
    async with db.transaction() as session:
        for n in range(count):
            business = await accounts.create_business(session, slug=f"intake-{n}", name=f"עסק {n}")
            made.append((business.slug, business.intake_key))
    await db.dispose()
    return made


async def add_lines_and_token(url: str, businesses: list[tuple[str, str]]) -> Agency:
    """Each business's lines (an SMS number, a WhatsApp phone_number_id, an e-mail address, as
    `mazkira add-line` adds them), and a personal API token of an admin."""
    db = Database(normalise_database_url(url))
    targets = []
    async with db.transaction() as session:
        for n, (slug, key) in enumerate(businesses):
            business = await accounts.business_by_slug(session, slug)
            sms = await lines.add_line(session, business, "sms", f"+9723555{1000 + n}")
            whatsapp = await lines.add_line(session, business, "whatsapp", f"{106540352240 + n}")
            email = await lines.add_line(session, business, "email", f"{slug}@in.bench.example")
            targets.append(
                Target(slug, key, str(business.id), sms.address, whatsapp.address, email.address)
            )
        admin = await accounts.create_user(
            session, email="integration@bench.example", password=secrets.token_hex(8), role="admin"
        )
        token = await api_tokens.create_token(session, admin, "bench", now=datetime.now(UTC))
    await db.dispose()
    return Agency(targets, token.secret)


async def add_existing(url: str, businesses: list[tuple[str, str]], count: int) -> None:
    """`count` leads from a month ago, as a long-running agency's tables hold them (a contact
    per two leads), written by the web form's own group writer a thousand at a time, then
    answered and closed so that the SLA sweep has nothing to do during the run. A form's
    lookups must not grow with these tables."""
    if count <= 0:
        return
    db = Database(normalise_database_url(url))
    phones = mobile_numbers(max(1, count // 2), random.Random(11))
    then = datetime.now(UTC) - timedelta(days=30)
    for start in range(0, count, 1000):
        deliveries = [
            form_arrival(
                *businesses[n % len(businesses)],
                {
                    "name": FIRST_NAMES[n % 20],
                    "phone": phones[n % len(phones)],
                    "external_id": f"old-{n}",
                },
                then,
            )
            for n in range(start, min(count, start + 1000))
        ]
        async with db.transaction() as session:
            await arrivals.write(session, deliveries)
    async with db.transaction() as session:
        await session.execute(delete(LeadAlarm))
        await session.execute(
            update(Lead).values(stage="won", first_response_at=then, closed_at=then)
        )
    await db.dispose()
    await analyze(url)


async def analyze(url: str) -> None:
    """On PostgreSQL, the statistics autovacuum gathers within a minute of the first writes
    (its naptime), which a run of half a minute on fresh tables would not otherwise see.
    Without them each connection keeps the plans it made for its prepared statements while
    the tables were all but empty, some by the wrong index (costs tie on an empty table), and
    runs of the same code disagree. An ANALYZE invalidates those plans."""
    db = Database(normalise_database_url(url))
    if not db.is_sqlite:
        async with db.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE"))
    await db.dispose()


def incoming(kind: str) -> ColumnElement[bool]:
    return (Interaction.kind == kind) & (Interaction.direction == "in")


# The row one arrival of each channel leaves (found by the condition), and its unique key.
STORED_AS: dict[str, tuple[ColumnElement[bool], InstrumentedAttribute[Any]]] = {
    "web": (Lead.channel == "web", Lead.external_id),
    "api": (Lead.channel == "phone", Lead.id),
    "twilio": (incoming("sms"), Interaction.provider_message_id),
    "whatsapp": (incoming("whatsapp"), Interaction.provider_message_id),
    "email": (incoming("email"), Interaction.provider_message_id),
}


async def count_stored(url: str) -> dict[str, tuple[int, int]]:
    """By channel, the rows its arrivals left and their distinct keys."""
    db = Database(normalise_database_url(url))
    found = {}
    async with db.transaction(write=False) as session:
        for channel, (where, key) in STORED_AS.items():
            counted = select(func.count(), func.count(distinct(key))).where(where)
            rows, keys = (await session.execute(counted)).one()
            found[channel] = (int(rows), int(keys))
    await db.dispose()
    return found


def stored_once(load: Load, rows: int, keys: int) -> bool:
    """Every arrival answered with success stored once: a row each, no key twice; where some
    got no answer at all, each of those may have been stored or not."""
    successes, unanswered = load.statuses[load.success], load.statuses[NO_ANSWER]
    return keys == rows and successes <= rows <= successes + unanswered


async def run(
    kind: str,
    *,
    rate: float,
    seconds: float,
    connections: int,
    warmup: float,
    work: Path,
    channels: tuple[str, ...] = CHANNELS,
    businesses: int = BUSINESSES,
    existing: int = 0,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    url = await fresh_database(kind, work)
    made = await add_businesses(url, businesses)
    agency = await add_lines_and_token(url, made)
    await add_existing(url, made, existing)
    signing = Signing()
    env = {**intake_env(url, secret="bench-intake"), **signing.env()}
    console = Served("console.cli", ["serve"], env, work / "console.log")
    ceiling = Served("bench.ceiling", [], {}, work / "ceiling.log")
    made_by = senders(agency, signing, host="127.0.0.1")
    loads = {
        channel: Load(console.port, made_by[channel], SUCCESS[channel]) for channel in channels
    }
    detail: dict[str, dict[str, Any]] = {}

    async def measured(
        load: Load, warmed: Callable[[], Awaitable[None]] | None = None
    ) -> dict[str, Any]:
        return await measure(
            load,
            rate=rate,
            seconds=seconds,
            connections=connections,
            warmup=warmup,
            warmed=warmed,
        )

    try:
        for server in (console, ceiling):
            server.start()
        for server in (console, ceiling):
            await server.ready()
        top = await measured(Load(ceiling.port, made_by["web"]))
        say(phase_lines("ceiling", top, rate))
        for channel in channels:
            detail[channel] = await measured(loads[channel], warmed=lambda: analyze(url))
            say(phase_lines(channel, detail[channel], rate))
    finally:
        for server in (console, ceiling):
            server.stop()
    stored = await count_stored(url)
    ceiling_rps = top["max"]["rps"]
    figures = {}
    for channel in channels:
        rows, keys = stored[channel]
        if channel == "web":
            rows, keys = rows - existing, keys - existing
        load, fixed = loads[channel], detail[channel]["fixed"]
        figures[channel] = {
            "rps": detail[channel]["max"]["rps"],
            "ratio": round(detail[channel]["max"]["rps"] / ceiling_rps, 3),
            "p50_ms": fixed["p50_ms"],
            "p99_ms": fixed["p99_ms"],
            "errors": sum(load.statuses.values()) - load.statuses[load.success],
            "unsent": fixed["unsent"],
            "sent": load.sent,
            "stored": rows,
            "stored_once": stored_once(load, rows, keys),
        }
    web = figures.get("web", {})
    return {
        "db": kind,
        "existing": existing,
        "ceiling_rps": ceiling_rps,
        "intake_rps": web.get("rps"),
        "ratio": web.get("ratio"),
        "p50_ms": web.get("p50_ms"),
        "p99_ms": web.get("p99_ms"),
        "channels": figures,
        "rate": rate,
        "intake": detail.get("web"),
        "ceiling": top,
        "detail": detail,
    }


def phase_lines(name: str, measured: dict[str, Any], rate: float) -> str:
    said = []
    for phase, title in (("fixed", f"at {rate:g}/s"), ("max", "flat out")):
        figures = measured[phase]
        unsent = f"  unsent {figures['unsent']}" if figures["unsent"] else ""
        said.append(
            f"{name:8} {title:11} {figures['rps']:8.1f} req/s  p50 {figures['p50_ms']:7.2f} ms"
            f"  p99 {figures['p99_ms']:8.2f} ms  max {figures['max_ms']:8.2f} ms"
            f"  statuses {figures['statuses']}{unsent}  client cpu {figures['client_cpu']:.0%}"
        )
    return "\n".join(said)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(result: dict[str, Any]) -> None:
    rate = result["rate"]
    print(f"ceiling  {result['ceiling_rps']:8.1f} req/s flat out")
    for channel, figures in result["channels"].items():
        at_least = "≥ " if figures["unsent"] else ""
        fast = figures["p99_ms"] < TARGET_P99_MS and not figures["errors"]
        ratio = f"ratio {figures['ratio']:.3f}"
        if channel == "web":
            ratio += f" (≥ {TARGET_RATIO}: {verdict(figures['ratio'] >= TARGET_RATIO)})"
        print(
            f"{channel:8} {figures['rps']:8.1f}/s flat out"
            f" (≥ {TARGET_RPS:,}: {verdict(figures['rps'] >= TARGET_RPS)})"
            f"  p99 {at_least}{figures['p99_ms']:.1f} ms at {rate:g}/s"
            f" (< {TARGET_P99_MS}, no errors: {verdict(fast)})"
            f"  p50 {at_least}{figures['p50_ms']:.1f} ms  {ratio}  errors {figures['errors']}"
            f"  stored {figures['stored']} of {figures['sent']} sent"
            f" ({'each once' if figures['stored_once'] else 'NOT each once'})"
        )
    keys = ("db", "existing", "ceiling_rps", "intake_rps", "ratio", "p50_ms", "p99_ms")
    compact = {key: result[key] for key in keys}
    compact["channels"] = result["channels"]
    print(json.dumps(compact))


def chosen_channels(named: list[str] | None) -> tuple[str, ...]:
    if not named or "all" in named:
        return CHANNELS
    return tuple(channel for channel in CHANNELS if channel in named)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--channel",
        action="append",
        choices=[*CHANNELS, "all"],
        help="a channel to load (repeatable; default: all)",
    )
    parser.add_argument("--rate", type=float, default=500, help="offered requests/s for latency")
    parser.add_argument("--seconds", type=float, default=10, help="length of each phase")
    parser.add_argument("--connections", type=int, default=64, help="for maximum throughput")
    parser.add_argument("--warmup", type=float, default=2, help="seconds at the rate first")
    parser.add_argument(
        "--existing", type=int, default=0, help="leads in the tables before the run (a month old)"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="mazkira-intake-") as work,
        asyncio.Runner(loop_factory=loop_factory()) as runner,
    ):
        result = runner.run(
            run(
                args.db,
                rate=args.rate,
                seconds=args.seconds,
                connections=args.connections,
                warmup=args.warmup,
                work=Path(work),
                channels=chosen_channels(args.channel),
                existing=args.existing,
                say=functools.partial(print, flush=True),
            )
        )
    report(result)
    failed = [name for name, figures in result["channels"].items() if not figures["stored_once"]]
    if failed:
        sys.exit(f"not every arrival answered with success was stored once: {', '.join(failed)}")


if __name__ == "__main__":
    main()
