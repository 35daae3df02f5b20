"""`mazkira simulate`: realistic Hebrew leads sent to a running console through its real, signed
intake endpoints, so the demo comes alive and a load can be made with the product's own tool.

Each lead goes to one business on one channel: its web form (with its intake key), Twilio's SMS
and voice webhooks (a call rings; when the console forwards it, the agency answers or misses
it), Meta's WhatsApp webhook, or a mail forwarded by a Mailgun route. The businesses, their keys
and lines are read from the console's database (DATABASE_URL), and every webhook is signed with
the secrets the server checks (`Settings.twilio_webhook_token` …): Twilio's over PUBLIC_URL when
it is set, since that is the URL the server believes it was called on.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import phonenumbers
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.config import ConfigError, Settings
from console.base.db import Database
from console.demo.simulated_leads import (
    FIRST_NAMES,
    FOLLOW_UPS,
    GENERAL_REQUESTS,
    LAST_NAMES,
    MAIL_DOMAINS,
    MOBILE_PREFIXES,
    REQUESTS,
    WEB_SOURCES,
)
from console.demo.webhook_payloads import (
    mailgun_forward_form,
    meta_text_message_payload,
    new_sid,
    signed_meta_body,
    signed_twilio_form,
    twilio_sms_params,
    twilio_voice_params,
)
from models import Business, Line

# Channels are dealt from a deck, reshuffled once drawn through, so every ten leads hold each
# channel in about the share a small business sees: calls and WhatsApp most, e-mail least.
DECK = ("phone",) * 3 + ("whatsapp",) * 3 + ("web",) * 2 + ("sms", "email")
PEOPLE = 80  # customers in a run's pool
RETURNING = 0.3  # the chance that a lead comes from someone who wrote to the business before
MISSED = 0.5  # of the calls the console forwards, those nobody at the agency picks up
RING_SECONDS = (3.0, 12.0)  # a forwarded call rings this long before it is answered or missed
HTML_MAIL = 0.4  # mails with an HTML body (half of them with no plain text at all)
WEB_EMAIL = 0.5  # web forms that give an e-mail address beside the phone
MAX_RATE = 1000.0
MAX_IN_FLIGHT = 100
TIMEOUT = 15.0


@dataclass(frozen=True)
class Plan:
    """What to send, checked: where, how many leads a second, for how long (None: until
    stopped), with which seed, to which businesses (none named: every active one)."""

    url: str
    rate: float
    seconds: float | None
    seed: int | None = None
    businesses: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, *, url: str, rate: str, minutes: str, seed: str | None, businesses: Sequence[str]
    ) -> Plan:
        per_second = _number("--rate", rate)
        if not 0 < per_second <= MAX_RATE:
            raise ConfigError(f"--rate is leads a second, above 0 and at most {MAX_RATE:g}")
        duration = _number("--minutes", minutes)
        if duration < 0:
            raise ConfigError("--minutes cannot be negative (0 runs until Ctrl-C)")
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ConfigError(f"--url must be the console's http(s) address, not {url!r}")
        try:
            number = None if seed is None else int(seed)
        except ValueError:
            raise ConfigError(f"--seed must be a whole number, not {seed!r}") from None
        return cls(
            url=url.strip().rstrip("/"),
            rate=per_second,
            seconds=duration * 60 or None,
            seed=number,
            businesses=tuple(businesses),
        )


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, not {raw!r}")
    return value


# --------------------------------------------------------------------------- who writes what


@dataclass(frozen=True)
class Target:
    """A business to write to: its slug, its intake key, and its first line of each channel."""

    slug: str
    intake_key: str
    lines: dict[str, str]

    @property
    def channels(self) -> tuple[str, ...]:
        return ("web", *self.lines)


async def load_targets(session: AsyncSession, slugs: Sequence[str] = ()) -> list[Target]:
    """The active businesses (those named, if any), with their lines."""
    statement = select(Business).where(Business.active.is_(True)).order_by(Business.slug)
    if slugs:
        statement = statement.where(Business.slug.in_(slugs))
    businesses = list(await session.scalars(statement))
    found = select(Line).where(Line.business_id.in_([b.id for b in businesses]))
    lines: dict[uuid.UUID, dict[str, str]] = {}
    for line in await session.scalars(found.order_by(Line.created_at, Line.address)):
        lines.setdefault(line.business_id, {}).setdefault(line.channel, line.address)
    return [Target(b.slug, b.intake_key, lines.get(b.id, {})) for b in businesses]


@dataclass(frozen=True)
class Person:
    name: str
    phone: str  # E.164
    email: str

    @property
    def local_phone(self) -> str:
        """The number as people type it: 052-123-4567."""
        number = phonenumbers.parse(self.phone)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)


def mobile_number(rng: random.Random) -> str:
    """A valid Israeli mobile number (E.164); unassigned ranges are drawn again."""
    while True:
        digits = rng.choice(MOBILE_PREFIXES) + str(rng.randrange(10**6, 10**7))
        number = phonenumbers.parse(digits, "IL")
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def make_people(rng: random.Random, count: int = PEOPLE) -> list[Person]:
    people = []
    for _ in range(count):
        (first, first_latin), (last, last_latin) = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first_latin}.{last_latin}{rng.randint(1, 99)}@{rng.choice(MAIL_DOMAINS)}"
        people.append(Person(f"{first} {last}", mobile_number(rng), email))
    return people


@dataclass(frozen=True)
class SimulatedLead:
    """One lead to send; `rng` decides its details, so a seed repeats a run whatever the
    order in which the server answers."""

    channel: str
    target: Target
    person: Person
    subject: str
    message: str
    rng: random.Random = field(compare=False)


class Customers:
    """Who writes next, to which business, on which channel, and what they write."""

    def __init__(self, targets: Sequence[Target], rng: random.Random) -> None:
        self.targets, self.rng = list(targets), rng
        self.people = make_people(rng)
        self.seen: dict[str, list[Person]] = {}  # by business: who wrote before
        self.deck: list[str] = []

    def next(self) -> SimulatedLead:
        channel = self._deal()
        able = [t for t in self.targets if channel in t.channels]
        if not able:
            channel, able = "web", self.targets
        target = self.rng.choice(able)
        seen = self.seen.setdefault(target.slug, [])
        returning = bool(seen) and self.rng.random() < RETURNING
        person = self.rng.choice(seen) if returning else self.rng.choice(self.people)
        if person not in seen:
            seen.append(person)
        subject, message = self.rng.choice(REQUESTS.get(target.slug, GENERAL_REQUESTS))
        if returning:
            subject, message = f"Re: {subject}", self.rng.choice(FOLLOW_UPS)
        rng = random.Random(self.rng.getrandbits(64))
        return SimulatedLead(channel, target, person, subject, message, rng)

    def _deal(self) -> str:
        if not self.deck:
            self.deck = list(DECK)
            self.rng.shuffle(self.deck)
        return self.deck.pop()


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Answer:
    """The server's answer to one request: its status (None: no answer at all), what the
    request did when that is worth saying, and why it was refused."""

    status: int | None
    step: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Sender:
    """Sends a lead as its provider would, signed as the server expects."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        url: str,
        *,
        ring_seconds: tuple[float, float] = RING_SECONDS,
    ) -> None:
        self.client, self.settings = client, settings
        self.signed_base = settings.public_url or url.rstrip("/")
        self.ring_seconds = ring_seconds
        self.account_sid = new_sid("AC")

    async def send(self, lead: SimulatedLead) -> list[Answer]:
        if lead.channel == "web":
            return [await self.web_form(lead)]
        if lead.channel == "sms":
            return [await self.sms(lead)]
        if lead.channel == "phone":
            return await self.call(lead)
        if lead.channel == "whatsapp":
            return [await self.whatsapp(lead)]
        return [await self.email(lead)]

    async def web_form(self, lead: SimulatedLead) -> Answer:
        person, rng = lead.person, lead.rng
        fields = {
            "name": person.name,
            "phone": person.local_phone,
            "email": person.email if rng.random() < WEB_EMAIL else "",
            "message": lead.message,
            "source": rng.choice(WEB_SOURCES),
            "external_id": f"simulated-{rng.getrandbits(64):016x}",
        }
        path = f"/intake/{lead.target.slug}/form"
        headers = {"X-Intake-Key": lead.target.intake_key}
        answer, _ = await self.post(lead, path, json=fields, headers=headers)
        return answer

    async def sms(self, lead: SimulatedLead) -> Answer:
        params = twilio_sms_params(
            from_=lead.person.phone,
            to=lead.target.lines["sms"],
            body=lead.message,
            account_sid=self.account_sid,
        )
        answer, _ = await self.twilio(lead, "/intake/twilio/sms", params)
        return answer

    async def call(self, lead: SimulatedLead) -> list[Answer]:
        """A call rings; when the console forwards it (`<Dial>`), the agency answers or misses
        it a few seconds later; otherwise the caller was asked to wait for a call-back."""
        line, call_sid = lead.target.lines["phone"], new_sid("CA")
        ringing = twilio_voice_params(
            from_=lead.person.phone, to=line, account_sid=self.account_sid, call_sid=call_sid
        )
        answer, response = await self.twilio(lead, "/intake/twilio/voice", ringing)
        if response is None or not answer.ok:
            return [answer]
        if "<Dial" not in response.text:
            return [replace(answer, step="call-back")]
        missed = lead.rng.random() < MISSED
        await asyncio.sleep(lead.rng.uniform(*self.ring_seconds))
        outcome = {
            "CallStatus": "in-progress",
            "DialCallSid": new_sid("CA"),
            "DialCallStatus": "no-answer" if missed else "completed",
        }
        if not missed:
            outcome["DialCallDuration"] = str(lead.rng.randint(40, 420))
        dialled = twilio_voice_params(
            from_=lead.person.phone,
            to=line,
            account_sid=self.account_sid,
            call_sid=call_sid,
            extra=outcome,
        )
        after, _ = await self.twilio(lead, "/intake/twilio/voice", dialled)
        return [answer, replace(after, step="missed" if missed else "answered")]

    async def whatsapp(self, lead: SimulatedLead) -> Answer:
        payload = meta_text_message_payload(
            from_wa_id=lead.person.phone.removeprefix("+"),
            body=lead.message,
            profile_name=lead.person.name,
            phone_number_id=lead.target.lines["whatsapp"],
            display_phone_number=lead.target.lines.get("phone", "+97235551234").removeprefix("+"),
        )
        signed = signed_meta_body(self.settings.whatsapp_webhook_secret, payload)
        answer, _ = await self.post(
            lead, "/intake/whatsapp", content=signed.body, headers=signed.headers
        )
        return answer

    async def email(self, lead: SimulatedLead) -> Answer:
        person, rng = lead.person, lead.rng
        plain = f"שלום,\n\n{lead.message}\n\nתודה,\n{person.name}\n{person.local_phone}\n"
        html = None
        if rng.random() < HTML_MAIL:
            html = (
                f'<div dir="rtl"><p>שלום,</p><p>{escape(lead.message)}</p>'
                f"<p>תודה,<br>{escape(person.name)}<br>{person.local_phone}</p></div>"
            )
            plain = "" if rng.random() < 0.5 else plain
        path = "/intake/email"
        signed = mailgun_forward_form(
            self.signed_base + path,
            self.settings.email_webhook_key,
            sender=person.email,
            recipient=lead.target.lines["email"],
            subject=lead.subject,
            body_plain=plain,
            body_html=html,
            from_header=f"{person.name} <{person.email}>",
        )
        answer, _ = await self.post(lead, path, content=signed.body, headers=signed.headers)
        return answer

    async def twilio(
        self, lead: SimulatedLead, path: str, params: dict[str, str]
    ) -> tuple[Answer, httpx.Response | None]:
        """Twilio signs the URL it calls: PUBLIC_URL's when the server has one."""
        signed = signed_twilio_form(
            self.signed_base + path, self.settings.twilio_webhook_token, params
        )
        return await self.post(lead, path, content=signed.body, headers=signed.headers)

    async def post(
        self, lead: SimulatedLead, path: str, **request: Any
    ) -> tuple[Answer, httpx.Response | None]:
        try:
            response = await self.client.post(path, **request)
        except httpx.HTTPError as error:
            return Answer(None, reason=f"no answer: {error!r}"), None
        if response.is_success:
            return Answer(response.status_code), response
        return Answer(response.status_code, reason=refusal(self.settings, lead, response)), response


# Who keeps the secret each refused channel was signed with.
SECRETS = {
    "sms": ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
    "phone": ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
    "whatsapp": ("WHATSAPP_APP_SECRET", "whatsapp_app_secret"),
    "email": ("EMAIL_WEBHOOK_SIGNING_KEY", "email_webhook_signing_key"),
}


def refusal(settings: Settings, lead: SimulatedLead, response: httpx.Response) -> str:
    """Why the server refused, in the terms of what the simulator can change."""
    status, channel, slug = response.status_code, lead.channel, lead.target.slug
    said = _error_of(response)
    if status == 401 and channel == "web":
        return f"the intake key of {slug} is not the server's (rotated since this run began?)"
    if status == 401:
        name, attribute = SECRETS[channel]
        why = f"the {name} differs from the server's"
        if channel in ("sms", "phone"):
            why += " (or PUBLIC_URL does: Twilio signs the URL)"
        if channel == "email":
            why += " (or the clocks differ by over five minutes)"
        if not getattr(settings, attribute):
            why += (
                f"; {name} is unset here, so it is derived from SECRET_KEY: run with the"
                " server's DATABASE_URL and SECRET_KEY"
            )
        return why
    if status == 404:
        where = "business" if channel == "web" else f"{channel} line"
        return (
            f"the server has no such {where} ({said}): is --url the console of this DATABASE_URL?"
        )
    if status == 429:
        return (
            "too many requests: the server's INTAKE_RATE_PER_KEY and INTAKE_RATE_PER_ADDRESS"
            " limit web forms per minute (0 lifts them)"
        )
    return said or response.reason_phrase


def _error_of(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("error", "")) if isinstance(body, dict) else ""


# --------------------------------------------------------------------------- the run


@dataclass
class Tally:
    """What a run sent and how the server answered."""

    launched: int = 0  # leads sent
    leads: int = 0  # leads whose requests are all answered (or failed)
    by_channel: Counter[str] = field(default_factory=Counter)  # leads taken, by channel
    by_status: Counter[str] = field(default_factory=Counter)  # requests, by answer
    reasons: Counter[str] = field(default_factory=Counter)  # why requests were refused
    refused: int = 0  # requests answered with anything but 2xx
    errors: int = 0  # requests with no answer at all
    started: float = field(default_factory=time.monotonic)
    sending: float = 0.0  # seconds from the first lead sent to the last

    def add(self, lead: SimulatedLead, answers: list[Answer]) -> str:
        """Count the lead; returns its line, which says why it was refused the first time
        that reason comes up (the summary counts them all)."""
        self.leads += 1
        if all(answer.ok for answer in answers):
            self.by_channel[lead.channel] += 1
        news = []
        for answer in answers:
            self.by_status[str(answer.status or "no answer")] += 1
            self.refused += answer.status is not None and not answer.ok
            self.errors += answer.status is None
            if answer.reason:
                if answer.reason not in self.reasons:
                    news.append(answer.reason)
                self.reasons[answer.reason] += 1
        return describe(lead, answers) + ("  — " + "; ".join(news) if news else "")

    @property
    def failed(self) -> bool:
        return bool(self.refused or self.errors)

    def summary(self) -> list[str]:
        seconds = time.monotonic() - self.started
        pace = f" ({(self.launched - 1) / self.sending:.2f}/s)" if self.sending else ""
        cut = f", {self.launched - self.leads} cut short" if self.launched > self.leads else ""
        channels = ", ".join(f"{c} {n}" for c, n in self.by_channel.most_common()) or "none"
        statuses = ", ".join(f"{s} ×{n}" for s, n in sorted(self.by_status.items())) or "none"
        return [
            f"sent {self.launched} leads over {self.sending:.1f} s{pace}; "
            f"{self.leads} done in {seconds:.1f} s{cut}",
            f"  taken, by channel: {channels}",
            f"  requests, by status: {statuses}",
            f"  refused: {self.refused}, errors (no answer): {self.errors}",
            *(f"    {n} × {reason}" for reason, n in self.reasons.most_common()),
        ]


def describe(lead: SimulatedLead, answers: list[Answer]) -> str:
    """When, channel, business, the answers (a call's two steps), and who."""
    statuses = " → ".join(
        " ".join(part for part in (str(a.status or "—"), a.step) if part) for a in answers
    )
    who = lead.person.email if lead.channel == "email" else lead.person.phone
    return (
        f"{datetime.now():%H:%M:%S}  {lead.channel:<8} {lead.target.slug:<18} {statuses:<16} "
        f"{lead.person.name} {who}"
    )


async def send_leads(
    sender: Sender,
    customers: Customers,
    *,
    rate: float,
    seconds: float | None,
    tally: Tally,
    out: Callable[[str], None],
    limit: int | None = None,
) -> None:
    """Send leads at `rate` a second, on a fixed schedule whatever the server's speed (up to
    MAX_IN_FLIGHT waiting at once), for `seconds` (None: until cancelled) or `limit` leads."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    running: set[asyncio.Task[None]] = set()

    async def one(lead: SimulatedLead) -> None:
        try:
            answers = await sender.send(lead)
        finally:
            slots.release()
        out(tally.add(lead, answers))

    sent = 0
    while limit is None or sent < limit:
        due = start + sent / rate
        if seconds is not None and due - start >= seconds:
            break
        await asyncio.sleep(max(0.0, due - loop.time()))
        await slots.acquire()
        task = asyncio.create_task(one(customers.next()))
        running.add(task)
        task.add_done_callback(running.discard)
        sent += 1
        tally.launched, tally.sending = sent, loop.time() - start
    if running:
        await asyncio.gather(*running)


def simulate(settings: Settings, plan: Plan, out: Callable[[str], None]) -> int:
    """Run the plan until its time is up or Ctrl-C; print the summary; 1 if anything failed."""
    if settings.is_sqlite:  # rather than make an empty database where the console's is not
        path = make_url(settings.database_url).database or ""
        if not Path(path).is_file():
            raise ConfigError(
                f"no database at {path or settings.database_url}: set DATABASE_URL to the "
                "console's, or start one with `mazkira demo`"
            )
    tally = Tally()
    try:
        asyncio.run(_run(settings, plan, tally, out))
    except KeyboardInterrupt:
        out("stopped")
    for line in tally.summary():
        out(line)
    return 1 if tally.failed else 0


async def _run(settings: Settings, plan: Plan, tally: Tally, out: Callable[[str], None]) -> None:
    async with httpx.AsyncClient(base_url=plan.url, timeout=TIMEOUT) as client:
        try:
            await client.get("/healthz")
        except httpx.HTTPError:
            raise ConfigError(
                f"nothing answers at {plan.url}: start the console (`mazkira demo`) or give --url"
            ) from None
        targets = await read_targets(settings, plan.businesses)
        how_long = f"for {plan.seconds / 60:g} minutes" if plan.seconds else "until Ctrl-C"
        out(
            f"Sending {plan.rate:g} leads a second {how_long} to {plan.url}, "
            f"for {', '.join(t.slug for t in targets)}"
        )
        tally.started = time.monotonic()
        await send_leads(
            Sender(client, settings, plan.url),
            Customers(targets, random.Random(plan.seed)),
            rate=plan.rate,
            seconds=plan.seconds,
            tally=tally,
            out=out,
        )


async def read_targets(settings: Settings, slugs: Sequence[str]) -> list[Target]:
    """The businesses, keys and lines, from the database the server uses (DATABASE_URL)."""
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            targets = await load_targets(session, slugs)
    except SQLAlchemyError as error:
        first = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise ConfigError(f"cannot read the businesses from DATABASE_URL: {first}") from None
    finally:
        await db.dispose()
    missing = sorted(set(slugs) - {t.slug for t in targets})
    if missing:
        raise ConfigError(f"no active business {', '.join(missing)} in the database")
    if not targets:
        raise ConfigError("no active business in the database: start with `mazkira demo`")
    return targets
