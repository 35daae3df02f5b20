"""A realistic demo agency: Israeli small businesses, their owners, secretaries and an admin,
and their last few working days, played through the console's own services on a simulated clock.

The work (console.demo.businesses, made of console.demo.story) is placed in the businesses'
covered hours before `now`: every step of a lead is a number of covered minutes before `now`, so
nothing lands on a Saturday, a holiday or a night, and nothing lands after `now`. A fixed seed
makes every demo alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from console.business.hours import BusinessHours
from console.channels.lines import add_line
from console.channels.notify import OUTBOX_PREFIX
from console.contacts import contacts
from console.contacts.contact_book import touch_contact
from console.demo.businesses import DEMOS, DRAFTS
from console.demo.story import FOLLOW_UPS, LOST_NOTE, Card, Demo, Story
from console.intake import arrivals
from console.intake.arrivals import Arrival, ById
from console.leads import calls, canned_replies, leads, replies, scripts
from console.people import accounts
from console.tasks import tasks
from models import BillingPlan, Business, Contact, Lead, Line, Notification, User

DEMO_PASSWORD = "mazkira-demo"  # noqa: S105 - printed to the demo user on purpose

BUSINESSES = [
    # slug, name, owner e-mail, owner name
    ("cohen-plumbing", "אינסטלציה כהן", "avi@cohen-plumbing.demo", "אבי כהן"),
    ("levi-dental", "מרפאת שיניים ד״ר לוי", "dana@levi-dental.demo", "ד״ר דנה לוי"),
    ("avraham-law", "אברהם ושות׳ – משרד עורכי דין", "yossi@avraham-law.demo", "עו״ד יוסי אברהם"),
    ("noy-design", "סטודיו נוי לעיצוב פנים", "noy@noy-design.demo", "נוי בר"),
    ("mizrahi-build", "מזרחי שיפוצים ובנייה", "moshe@mizrahi-build.demo", "משה מזרחי"),
]

# Each business's lines, so leads reach it on every channel (`mazkira simulate` sends them): a
# number for calls and SMS, a WhatsApp phone_number_id, and the mailbox <slug>@MAILBOX_DOMAIN.
LINES = {
    "cohen-plumbing": ("03-5551234", "106540352242901"),
    "levi-dental": ("03-5552345", "106540352242902"),
    "avraham-law": ("02-5553456", "106540352242903"),
    "noy-design": ("09-7556789", "106540352242904"),
    "mizrahi-build": ("03-5554567", "106540352242905"),
}
MAILBOX_DOMAIN = "in.mazkira.example"

SECRETARIES = [
    # e-mail, name, the businesses she serves, the ones she backs up
    (
        "michal@mazkira.demo",
        "מיכל",
        ["cohen-plumbing", "mizrahi-build", "levi-dental"],
        ["noy-design"],
    ),
    ("noa@mazkira.demo", "נועה", ["levi-dental", "avraham-law"], ["cohen-plumbing"]),
    ("shira@mazkira.demo", "שירה", ["noy-design", "avraham-law"], ["mizrahi-build"]),
]

ADMIN = ("admin@mazkira.demo", "רונית – מנהלת המוקד")

# How the Hebrew interface addresses each of them (anyone else: the neutral plural).
ADDRESSED_AS = {
    "avi@cohen-plumbing.demo": "masculine",
    "dana@levi-dental.demo": "feminine",
    "yossi@avraham-law.demo": "masculine",
    "noy@noy-design.demo": "feminine",
    "michal@mazkira.demo": "feminine",
    "noa@mazkira.demo": "feminine",
    "shira@mazkira.demo": "feminine",
    ADMIN[0]: "feminine",
}

LIVE_CALLER = "michal@mazkira.demo"  # the secretary on a call right now
SEED = 2026
WORKING_DAYS = 4  # working days of history, today's hours so far included
MIN_COVERED_MINUTES = 1800
LOOK_BACK_DAYS = 60  # enough to get past the longest holiday season
MARGIN = 20  # covered minutes left between a story's last step and now
STEP = 10  # covered minutes a touch takes up in a story's plan
GAP = 60  # covered minutes at least between a customer's answer and their next story
HANDLED = ("contacted", "meeting", "quote", "won", "lost")
# Open stories arrived this many minutes before now: wall minutes for "fresh" and "live",
# covered minutes for the others.
RECENT = {"fresh": (10, 60), "live": (4.5, 5.5), "new": (20, 240), "claimed": (15, 60)}
MINUTE = timedelta(minutes=1)

# Covered minutes from arrival to the first response, and the kind of that response.
FIRST_RESPONSE = {
    "phone": (0.2, 1.0),
    "walk-in": (20, 90),
    "whatsapp": (2, 12),
    "sms": (3, 15),
    "email": (8, 40),
    "web": (4, 25),
}
FIRST_KIND = {
    "phone": "inbound_call",
    "walk-in": "outbound_call",
    "whatsapp": "whatsapp",
    "sms": "sms",
    "email": "outbound_call",
    "web": "outbound_call",
}
WEB_SOURCES = ("גוגל", "אינסטגרם", "המלצה מחבר", "פייסבוק")
STAGE_AFTER = {"booked_meeting": "meeting", "sent_quote": "quote"}  # a first call's outcome
# How far a sent reply got by now: WhatsApp shows it read, SMS and e-mail report delivery.
DELIVERED = {"whatsapp": "read", "sms": "delivered", "email": "delivered"}


@dataclass(frozen=True)
class Cast:
    """Who works for a business: its owner and the secretaries who serve or back it up."""

    business: Business
    owner: User
    secretaries: list[User]
    backups: list[User]


class PastHours:
    """A business's covered hours before `now`, read backwards: at(m) is m covered minutes
    before now (or before the end of today's hours, if they are over)."""

    def __init__(self, now: datetime, hours: BusinessHours) -> None:
        self.now, self.hours = now, hours
        self.windows: list[tuple[datetime, datetime]] = []  # latest first, clipped to now
        today, days = now.astimezone(hours.zone).date(), 0
        for back in range(LOOK_BACK_DAYS):
            if days >= WORKING_DAYS and self.total >= MIN_COVERED_MINUTES:
                break
            day = today - timedelta(days=back)
            windows = [(s, min(e, now)) for s, e in hours.windows_on(day) if s < now]
            days += bool(windows)
            self.windows += reversed(windows)

    @property
    def total(self) -> float:
        return sum((end - start) / MINUTE for start, end in self.windows)

    def at(self, minutes_before: float) -> datetime:
        left = max(minutes_before, 0.0)
        for start, end in self.windows:
            length = (end - start) / MINUTE
            if left <= length:
                return _whole_seconds(end - left * MINUTE)
            left -= length
        return _whole_seconds(self.windows[-1][0])

    def wall_time(self, moment: datetime, *, round_up_to: int = 15) -> str:
        """A moment as the business's wall time for a form, rounded up to a quarter hour."""
        local = moment.astimezone(self.hours.zone).replace(second=0, microsecond=0)
        local += timedelta(minutes=-local.minute % round_up_to)
        return local.strftime("%Y-%m-%dT%H:%M")


async def seed_if_empty(
    session: AsyncSession, *, now: datetime | None = None
) -> list[tuple[str, str, str]] | None:
    """Seed the demo on an empty database and return its logins; leave any other database be."""
    if await session.scalar(select(func.count()).select_from(Business)):
        return None
    if await session.scalar(select(func.count()).select_from(User)):
        return None
    now = now or datetime.now(UTC)
    rng = random.Random(SEED)
    logins: list[tuple[str, str, str]] = []
    businesses: dict[str, Business] = {}
    owners: dict[str, User] = {}
    for slug, name, owner_email, owner_name in BUSINESSES:
        businesses[slug] = await accounts.create_business(session, slug=slug, name=name)
        await add_demo_lines(session, businesses[slug])
        owners[slug] = await accounts.create_user(
            session,
            email=owner_email,
            password=DEMO_PASSWORD,
            role="owner",
            name=owner_name,
            businesses=[slug],
        )
        owners[slug].addressed_as = ADDRESSED_AS.get(owner_email, "plural")
        joined = now - timedelta(days=rng.randint(120, 720))
        _backdate(businesses[slug], joined)
        _backdate(owners[slug], joined)
        logins.append(("owner", owner_email, DEMO_PASSWORD))
        session.add(demo_plan(businesses[slug], now))
    secretaries: dict[str, User] = {}
    for email, name, serves, backs_up in SECRETARIES:
        secretary = await accounts.create_user(
            session,
            email=email,
            password=DEMO_PASSWORD,
            role="secretary",
            name=name,
            businesses=serves,
        )
        secretary.addressed_as = ADDRESSED_AS.get(email, "plural")
        for slug in backs_up:
            await accounts.link_user(session, secretary, businesses[slug], backup=True)
        _backdate(secretary, now - timedelta(days=rng.randint(730, 1100)))
        secretaries[email] = secretary
        logins.append(("secretary", email, DEMO_PASSWORD))
    admin = await accounts.create_user(
        session, email=ADMIN[0], password=DEMO_PASSWORD, role="admin", name=ADMIN[1]
    )
    admin.addressed_as = ADDRESSED_AS[ADMIN[0]]
    _backdate(admin, now - timedelta(days=1200))
    logins.append(("admin", ADMIN[0], DEMO_PASSWORD))
    for slug, demo in DEMOS.items():
        cast = Cast(
            businesses[slug],
            owners[slug],
            [secretaries[e] for e, _n, serves, _b in SECRETARIES if slug in serves],
            [secretaries[e] for e, _n, _s, backs_up in SECRETARIES if slug in backs_up],
        )
        await seed_work(session, rng, now, cast, admin, demo)
    return logins


def demo_plan(business: Business, now: datetime) -> BillingPlan:
    """A plan like the agency's usual (3,500 ₪ a month), in force for the past year."""
    year_ago = (now - timedelta(days=365)).date().replace(day=1)
    return BillingPlan(
        business_id=business.id,
        starts_on=year_ago,
        monthly_fee_agorot=350_000,
        included_calls=150,
        included_minutes=400,
        included_messages=300,
        call_price_agorot=600,
        minute_price_agorot=150,
        message_price_agorot=40,
    )


async def add_demo_lines(session: AsyncSession, business: Business) -> list[Line]:
    """The demo business's phone, SMS, WhatsApp and e-mail lines."""
    number, whatsapp = LINES[business.slug]
    addresses = [
        ("phone", number),
        ("sms", number),
        ("whatsapp", whatsapp),
        ("email", f"{business.slug}@{MAILBOX_DOMAIN}"),
    ]
    return [await add_line(session, business, channel, address) for channel, address in addresses]


async def seed_work(
    session: AsyncSession, rng: random.Random, now: datetime, cast: Cast, admin: User, demo: Demo
) -> None:
    """One business's script, customers and last few days of leads."""
    business = cast.business
    past = PastHours(now, BusinessHours.from_business(business.weekly_hours, business.timezone))
    written = business.created_at + timedelta(days=rng.randint(10, 20))  # during onboarding
    script = await scripts.save_draft(session, admin, business, demo.script)
    script.created_at = written
    await scripts.publish_draft(session, business, now=written + timedelta(days=1))
    for title, body in demo.canned:
        await canned_replies.save_canned_reply(
            session, business, locale="he", title=title, body=body, now=written
        )
    if business.slug in DRAFTS:
        draft = await scripts.save_draft(session, cast.owner, business, DRAFTS[business.slug])
        draft.created_at = past.at(rng.uniform(300, 1200))
    plans = plan_stories(demo.stories, rng, past)
    cards = []
    for index, card in enumerate(demo.cards):
        arrivals = [
            p["arrival"] for s, p in zip(demo.stories, plans, strict=True) if s.who == index
        ]
        cards.append(await add_card(session, business, card, now, arrivals))
    playback = Playback(session, rng, past, cast, script.questions)
    for story, times in zip(demo.stories, plans, strict=True):
        await playback.story(cards[story.who], story, times)


def plan_stories(
    stories: tuple[Story, ...], rng: random.Random, past: PastHours
) -> list[dict[str, datetime]]:
    """When each step of every story happens, all before now. A customer's next story arrives
    only after the previous one was answered, so the lead page tells a history in order."""
    offsets = [story_steps(story, rng) for story in stories]
    starts = [0.0] * len(stories)
    next_start: dict[int, float] = {}  # customer -> when their next story arrives
    for index in reversed(range(len(stories))):
        story, steps = stories[index], offsets[index]
        if story.fate in RECENT:
            starts[index] = rng.uniform(*RECENT[story.fate])
        else:
            earlier = [offsets[i] for i in range(index) if stories[i].who == story.who]
            latest = past.total - 5 - sum(o.get("first", 0) + GAP for o in earlier)
            earliest = max(steps.values()) + MARGIN
            if story.who in next_start:
                earliest = max(earliest, next_start[story.who] + steps["first"] + GAP)
            starts[index] = rng.uniform(earliest, max(earliest, latest))
        next_start[story.who] = starts[index]
    plans = []
    for story, steps, start in zip(stories, offsets, starts, strict=True):
        if story.fate in ("fresh", "live"):  # arrived minutes ago, in hours or not
            plans.append(
                {step: _whole_seconds(past.now - (start - m) * MINUTE) for step, m in steps.items()}
            )
        else:
            plans.append({step: past.at(start - m) for step, m in steps.items()})
    return plans


def story_steps(story: Story, rng: random.Random) -> dict[str, float]:
    """The minutes from a story's arrival to each of its steps."""
    steps = {"arrival": 0.0}
    for n in range(1, story.repeats + 1):  # called again, a few minutes apart
        steps[f"repeat{n}"] = n * rng.uniform(2, 5)
    if story.fate == "claimed":
        steps["claim"] = rng.uniform(1, 4)
    if story.fate == "live":
        steps["first"] = 2.0  # on the phone for about three minutes now
    if story.fate not in HANDLED:
        return steps
    steps["first"] = first = rng.uniform(*FIRST_RESPONSE[story.channel])
    for n, _said in enumerate(story.conversation):  # the first reply is the first response
        steps[f"say{n}"] = first
        first += rng.uniform(2, 12)
    if story.task and story.task.state == "done":
        steps["task_done"] = first + STEP + rng.uniform(60, 480)
    if story.task and story.task.state == "overdue":
        steps["task_due"] = first + STEP + rng.uniform(60, 180)
    if story.fate in ("quote", "won") and story.outcome != "sent_quote":
        steps["quote"] = first + STEP + rng.uniform(240, 600)
    if story.fate in ("won", "lost"):
        steps[story.fate] = max(steps.values()) + STEP + rng.uniform(120, 600)
    return steps


async def add_card(
    session: AsyncSession, business: Business, card: Card, now: datetime, arrivals: list[datetime]
) -> Contact:
    """A customer card, dated back to the customer's first contact with the business."""
    contact, _created = await contacts.find_or_create_contact(
        session, business, phone=card.phone, email=card.email, name=card.name
    )
    since = now - timedelta(days=card.since_days) if card.since_days else None
    fields = {
        "company": card.company,
        "abc_class": card.abc,
        "preferred_channel": card.channel,
        "notes": card.notes,
        "earlier_value": str(card.value),  # before the leads played here; won deals add to it
        "customer_since": since.date().isoformat() if since else "",
    }
    await contacts.update_contact(session, contact, fields)
    contact.created_at = min([*arrivals, *([since] if since else [])])
    if not arrivals:
        touch_contact(contact, contact.created_at)
    return contact


@dataclass(frozen=True)
class Playback:
    """Plays one business's stories through the services."""

    session: AsyncSession
    rng: random.Random
    past: PastHours
    cast: Cast
    questions: list[dict[str, Any]]

    async def story(self, contact: Contact, story: Story, times: dict[str, datetime]) -> None:
        """One lead from its arrival to where its story leaves it."""
        session = self.session
        if story.conversation or story.repeats:
            lead = await self.arrive(contact, story, times)
        else:
            lead = await self.typed_in(contact, story, times)
        if story.fate in ("fresh", "new"):
            return
        secretary = self.secretary_for(story)
        if story.fate == "claimed":
            await leads.claim_lead(session, secretary, lead.id, now=times["claim"])
            return
        first = times["first"]
        answers = self.answers(story.answers, first)
        kind = story.kind or FIRST_KIND[story.channel]
        if story.fate == "live":
            call = await calls.start_interaction(session, secretary, lead.id, kind=kind, now=first)
            await calls.autosave(
                session,
                secretary,
                call.id,
                notes=story.notes,
                summary="",
                answers=answers,
                now=first + 2 * MINUTE,
            )
            return
        if story.conversation:
            ended = await self.converse(secretary, lead, contact, story, times)
            if story.notes:
                await calls.add_note(session, secretary, lead.id, text=story.notes, now=ended)
        else:
            what = (kind, story.summary, story.notes, story.outcome)
            ended = await self.touch(secretary, lead, what, first, answers)
        await self.follow_up(secretary, lead, story, times, ended)

    async def typed_in(self, contact: Contact, story: Story, times: dict[str, datetime]) -> Lead:
        """A lead a secretary typed in, or a web form's."""
        cast = self.cast
        new = arrivals.NewLead(
            business_id=str(cast.business.id),
            phone=contact.phone or "",
            email=(contact.email or "") if story.channel == "email" else "",
            name=contact.name,
            channel=story.channel,
            subject=story.subject,
            message=story.message,
            priority=story.priority,
            source=self.rng.choice(WEB_SOURCES) if story.channel == "web" else "",
        )
        return await arrivals.create_lead(
            self.session, None, new, now=times["arrival"], business=cast.business
        )

    async def arrive(self, contact: Contact, story: Story, times: dict[str, datetime]) -> Lead:
        """A lead its provider brought (a WhatsApp message, an SMS, an e-mail, a call), and the
        calls again that joined it, as the webhooks write them."""
        arrived = await arrivals.receive(
            self.session, self.delivery(contact, story, times["arrival"], story.message)
        )
        for n in range(1, story.repeats + 1):
            await arrivals.receive(
                self.session, self.delivery(contact, story, times[f"repeat{n}"], "")
            )
        return await self.session.get_one(Lead, arrived.lead_id)

    def delivery(self, contact: Contact, story: Story, at: datetime, text: str) -> Arrival:
        """One message or call from the contact, under a provider's id of its own."""
        return Arrival(
            ById(self.cast.business.id),
            story.channel,
            at,
            phone=contact.phone or "",
            email=(contact.email or "") if story.channel == "email" else "",
            name=contact.name,
            subject=story.subject,
            text=text,
            priority=story.priority,
            message_id=f"demo-{self.rng.getrandbits(64):016x}",
        )

    async def converse(
        self,
        secretary: User,
        lead: Lead,
        contact: Contact,
        story: Story,
        times: dict[str, datetime],
    ) -> datetime:
        """The story's thread: her replies go out through the reply path (delivered by now),
        the contact's answers come in from the provider and join the lead. When it ended."""
        at = times["first"]
        for n, (direction, text) in enumerate(story.conversation):
            at = times[f"say{n}"]
            if direction == "in":
                await arrivals.receive(self.session, self.delivery(contact, story, at, text))
                continue
            body = canned_replies.fill_reply(
                text,
                contact=contact.name,
                business=self.cast.business.name,
                secretary=secretary.name,
            )
            reply = await replies.send_reply(
                self.session, secretary, lead.id, channel=story.channel, text=body, now=at
            )
            reply.delivery_status = DELIVERED[story.channel]
            await self.session.execute(
                update(Notification)
                .where(Notification.idempotency_key == f"reply:{reply.id}")
                .values(status="sent", sent_at=at, provider_id=f"{OUTBOX_PREFIX}{reply.id}")
            )
        return at

    async def follow_up(
        self,
        secretary: User,
        lead: Lead,
        story: Story,
        times: dict[str, datetime],
        ended: datetime,
    ) -> None:
        """After the first response: a note, the stage it moved to, the task handed off, the
        quote and the close."""
        session, cast = self.session, self.cast
        answers = self.answers(story.answers, times["first"])
        if story.note:
            await calls.add_note(session, secretary, lead.id, text=story.note, now=ended + MINUTE)
        moved = "meeting" if story.fate == "meeting" else STAGE_AFTER.get(story.outcome)
        if moved and story.fate != "contacted":
            value = str(story.value) if moved == "quote" else ""
            await leads.move_stage(
                session, secretary, lead.id, stage=moved, deal_value=value, now=ended
            )
        if story.task:
            await self.hand_off(secretary, lead, story, times, ended)
        for stage, (kind, summary, notes, outcome) in FOLLOW_UPS.items():
            if stage not in times:
                continue
            if kind == "whatsapp" and story.channel == "email":
                kind = "email"
            notes = notes.format(value=f"{story.value:,}", owner=cast.owner.name)
            ended = await self.touch(
                secretary, lead, (kind, summary, notes, outcome), times[stage], answers
            )
            await leads.move_stage(
                session, secretary, lead.id, stage=stage, deal_value=str(story.value), now=ended
            )
        if story.fate == "lost":
            closed = times["lost"]
            note = LOST_NOTE.format(reason=story.lost_reason)
            await calls.add_note(session, secretary, lead.id, text=note, now=closed)
            await leads.move_stage(
                session,
                secretary,
                lead.id,
                stage="lost",
                lost_reason=story.lost_reason,
                now=closed,
            )

    async def touch(
        self,
        secretary: User,
        lead: Lead,
        what: tuple[str, str, str, str],
        start: datetime,
        answers: dict[str, str],
    ) -> datetime:
        """A call or message (kind, summary, notes, outcome), logged and wrapped up; returns
        when it ended: a call lasts 1–8 minutes, a message exchange 1–5."""
        kind, summary, notes, outcome = what
        call = await calls.start_interaction(self.session, secretary, lead.id, kind=kind, now=start)
        longest = 8 if kind.endswith("_call") else 5
        ended = _whole_seconds(start + self.rng.uniform(1, longest) * MINUTE)
        await calls.wrap_up(
            self.session,
            secretary,
            call.id,
            notes=notes,
            summary=summary,
            answers=answers,
            outcome=outcome,
            now=ended,
        )
        return ended

    async def hand_off(
        self, secretary: User, lead: Lead, story: Story, times: dict[str, datetime], at: datetime
    ) -> None:
        """The story's follow-up task, handed off after the first call: done, overdue or due
        in the coming days."""
        task, hours = story.task, self.past.hours
        assert task is not None
        if task.to == "owner":
            assignee = self.cast.owner
        else:
            others = [*self.cast.secretaries, *self.cast.backups]
            assignee = next(person for person in others if person.id != secretary.id)
        if task.state == "overdue":
            due = times["task_due"]
        elif task.state == "done":
            due = hours.add_covered_minutes(at, self.rng.uniform(60, 600))
        else:
            due = hours.add_covered_minutes(self.past.now, self.rng.uniform(30, 1500))
        handoff = tasks.HandOff(
            assignee_id=str(assignee.id),
            title=task.title,
            due=self.past.wall_time(due),
            details=task.details,
            priority=task.priority,
        )
        created = await tasks.hand_off(self.session, secretary, lead.id, handoff, now=at)
        if task.state == "done":
            done = times["task_done"]
            await tasks.set_task_status(self.session, assignee, created.id, "done", now=done)

    def secretary_for(self, story: Story) -> User:
        """Mostly one of the business's own secretaries, now and then its backup."""
        if story.fate == "live":
            return next(s for s in self.cast.secretaries if s.email == LIVE_CALLER)
        people = [*self.cast.secretaries, *self.cast.backups]
        weights = [5] * len(self.cast.secretaries) + [1] * len(self.cast.backups)
        return self.rng.choices(people, weights=weights)[0]

    def answers(self, values: tuple[str, ...], at: datetime) -> dict[str, str]:
        """Answers by question id; a date question's "+N" is N days after `at`."""
        answers = {}
        for question, value in zip(self.questions, values, strict=False):
            if question["kind"] == "date" and value.startswith("+"):
                day = at.astimezone(self.past.hours.zone).date() + timedelta(days=int(value[1:]))
                value = day.isoformat()
            if value:
                answers[question["id"]] = value
        return answers


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _backdate(row: Business | User, when: datetime) -> None:
    """The services stamp accounts with the real clock; the demo's are older than its story."""
    row.created_at = when
    if isinstance(row, User):
        row.password_changed_at = when
