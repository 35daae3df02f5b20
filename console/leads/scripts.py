"""Scripts: the business's procedure, edited as a draft and published as numbered versions."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from console.base.errors import Invalid
from console.contacts.contacts import normalise_phone
from console.people.audit import Actor, record_change
from models import Business, Script, User
from models.scripts import QUESTION_KINDS

MAX_QUESTIONS = 40
MAX_TEXT = 20_000
YES = ("yes", "no")


@dataclass(frozen=True)
class ScriptDraft:
    """A script as typed in the editor, before it is checked."""

    greeting: str = ""
    questions: str = ""
    faq: str = ""
    escalation: str = ""
    dos: str = ""
    donts: str = ""


# Built once: every lead page reads it.
PUBLISHED = (
    select(Script)
    .where(Script.business_id == bindparam("business_id"), Script.status == "published")
    .order_by(Script.version.desc())
    .limit(1)
)


async def published_script(session: AsyncSession, business_id: uuid.UUID) -> Script | None:
    return await session.scalar(PUBLISHED, {"business_id": business_id})


async def draft_script(session: AsyncSession, business_id: uuid.UUID) -> Script | None:
    statement = select(Script).where(Script.business_id == business_id, Script.status == "draft")
    return await session.scalar(statement)


async def script_versions(session: AsyncSession, business_id: uuid.UUID) -> list[Script]:
    statement = (
        select(Script)
        .where(Script.business_id == business_id, Script.status == "published")
        .order_by(Script.version.desc())
    )
    return list((await session.scalars(statement)).all())


async def script_version(
    session: AsyncSession, business_id: uuid.UUID, version: int
) -> Script | None:
    statement = select(Script).where(Script.business_id == business_id, Script.version == version)
    return await session.scalar(statement)


async def save_draft(
    session: AsyncSession, user: User | None, business: Business, typed: ScriptDraft
) -> Script:
    """Check what was typed and keep it as the business's one draft (made on first save)."""
    fields = parse_draft(typed)
    draft = await draft_script(session, business.id)
    if draft is None:
        latest = await session.scalar(
            select(func.max(Script.version)).where(Script.business_id == business.id)
        )
        draft = Script(business_id=business.id, version=(latest or 0) + 1, status="draft")
        session.add(draft)
    for name, value in fields.items():
        setattr(draft, name, value)
    draft.created_by_id = user.id if user is not None else None
    await session.flush()
    return draft


async def publish_draft(session: AsyncSession, business: Business, *, now: datetime) -> Script:
    draft = await draft_script(session, business.id)
    if draft is None:
        raise Invalid("There is no draft to publish.")
    if not draft.greeting.strip():
        raise Invalid("The script needs a greeting.", field="greeting")
    draft.status = "published"
    draft.published_at = now
    await session.flush()
    return draft


async def save_script(
    session: AsyncSession, actor: Actor, business: Business, typed: ScriptDraft, *, publish: bool
) -> Script:
    """The agency's editor: keep what was typed as the draft, and publish it when asked; the
    saved or published version is in the audit log as `actor`'s."""
    draft = await save_draft(session, actor.user, business, typed)
    if publish:
        draft = await publish_draft(session, business, now=actor.now)
    done = "script.published" if publish else "script.saved"
    await record_change(session, actor, done, business, version=draft.version)
    return draft


async def save_owner_draft(
    session: AsyncSession, actor: Actor, business: Business, typed: ScriptDraft, *, publish: bool
) -> Script:
    """The owner's edit of his script and FAQ: it becomes the business's draft, which the
    agency sees on its editor and publishes, or it is published at once when the agency lets
    this business's owner do that (`owner_may_publish`). Without a greeting it is refused
    before anything changes (the agency's own drafts may lack one until published)."""
    if publish and not business.owner_may_publish:
        raise Invalid("The agency publishes this script: send it to the agency as a draft.")
    if not typed.greeting.strip():
        raise Invalid("The script needs a greeting.", field="greeting")
    script = await save_draft(session, actor.user, business, typed)
    if publish:
        script = await publish_draft(session, business, now=actor.now)
    done = "script.published" if publish else "script.saved"
    await record_change(session, actor, done, business, by="owner")
    return script


async def draft_author(session: AsyncSession, draft: Script | None) -> User | None:
    """Who last saved the draft: the agency sees when it is the owner's, waiting for it."""
    if draft is None or draft.created_by_id is None:
        return None
    return await session.get(User, draft.created_by_id)


async def set_owner_may_publish(
    session: AsyncSession, actor: Actor, business: Business, allowed: bool
) -> None:
    """Whether the owner publishes his own edits; set by an admin (audited)."""
    business.owner_may_publish = allowed
    await session.flush()
    await record_change(session, actor, "script.owner_may_publish", business, allowed=allowed)


def preview(typed: ScriptDraft) -> Script:
    """The script as it would be published, unsaved, for the editor's preview."""
    return Script(version=0, status="draft", **parse_draft(typed))


def parse_draft(typed: ScriptDraft) -> dict[str, Any]:
    for name in ("greeting", "questions", "faq", "escalation", "dos", "donts"):
        if len(getattr(typed, name)) > MAX_TEXT:
            raise Invalid("This text is too long.", field=name)
    return {
        "greeting": typed.greeting.strip(),
        "questions": parse_questions(typed.questions),
        "faq": parse_faq(typed.faq),
        "escalation": parse_escalation(typed.escalation),
        "dos": typed.dos.strip(),
        "donts": typed.donts.strip(),
    }


def parse_questions(text: str) -> list[dict[str, Any]]:
    """One question a line: `* text | kind | choice, choice`; a leading * marks it required."""
    questions = []
    for number, line in enumerate(_lines(text), start=1):
        required = line.startswith("*")
        parts = [p.strip() for p in line.lstrip("*").split("|")]
        question, kind = parts[0], (parts[1].lower() if len(parts) > 1 and parts[1] else "text")
        if not question:
            raise Invalid("Question %(n)s has no text.", field="questions", n=number)
        if kind not in QUESTION_KINDS:
            raise Invalid(
                "Question %(n)s: the kind must be one of %(kinds)s.",
                field="questions",
                n=number,
                kinds=", ".join(QUESTION_KINDS),
            )
        choices = [c.strip() for c in parts[2].split(",") if c.strip()] if len(parts) > 2 else []
        if kind == "choice" and len(choices) < 2:
            raise Invalid("Question %(n)s needs at least two choices.", field="questions", n=number)
        questions.append(
            {
                "id": f"q{number}",
                "text": question,
                "kind": kind,
                "required": required,
                "choices": choices,
            }
        )
    if len(questions) > MAX_QUESTIONS:
        raise Invalid(
            "A script may ask at most %(n)s questions.", field="questions", n=MAX_QUESTIONS
        )
    return questions


def parse_faq(text: str) -> list[dict[str, str]]:
    """Blocks separated by a blank line: the first line asks, the rest answers."""
    entries = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        if len(lines) < 2:
            raise Invalid("Each FAQ entry needs a question line and an answer.", field="faq")
        entries.append({"q": lines[0], "a": "\n".join(lines[1:])})
    return entries


def parse_escalation(text: str) -> list[dict[str, str]]:
    """One rule a line: `when | whom | how`."""
    rules = []
    for line in _lines(text):
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise Invalid("Each escalation rule is: when | whom | how.", field="escalation")
        rules.append({"when": parts[0], "whom": parts[1], "how": parts[2]})
    return rules


def as_draft(script: Script | None) -> ScriptDraft:
    """The editor's text for a stored script (the inverse of parse_draft)."""
    if script is None:
        return ScriptDraft()
    questions = "\n".join(
        ("* " if q["required"] else "")
        + " | ".join([q["text"], q["kind"], *([", ".join(q["choices"])] if q["choices"] else [])])
        for q in script.questions
    )
    faq = "\n\n".join(f"{e['q']}\n{e['a']}" for e in script.faq)
    escalation = "\n".join(f"{r['when']} | {r['whom']} | {r['how']}" for r in script.escalation)
    return ScriptDraft(script.greeting, questions, faq, escalation, script.dos, script.donts)


GREETING_VARIABLES = re.compile(r"\{(business|secretary|contact)\}")


def fill_greeting(greeting: str, *, business: str, secretary: str, contact: str) -> str:
    """Put the names in; only the three known variables are replaced, nothing is evaluated."""
    parts = greeting_parts(greeting, business=business, secretary=secretary, contact=contact)
    return "".join(text for text, _ in parts)


def greeting_parts(
    greeting: str, *, business: str, secretary: str, contact: str
) -> list[tuple[str, bool]]:
    """The greeting as (text, is a name) pieces, so a page can isolate each name (`<bdi>`):
    a caller's name must not reorder the sentence around it."""
    names = {"business": business, "secretary": secretary, "contact": contact}
    parts: list[tuple[str, bool]] = []
    start = 0
    for found in GREETING_VARIABLES.finditer(greeting):
        if found.start() > start:
            parts.append((greeting[start : found.start()], False))
        parts.append((names[found.group(1)], True))
        start = found.end()
    if start < len(greeting):
        parts.append((greeting[start:], False))
    return parts


def check_answers(
    questions: list[dict[str, Any]], answers: dict[str, str], *, final: bool
) -> dict[str, str]:
    """Answers cleaned by each question's kind; at wrap-up (`final`) required ones must be there."""
    known = {q["id"]: q for q in questions}
    cleaned: dict[str, str] = {}
    for question_id, raw in answers.items():
        question = known.get(question_id)
        if question is None:
            continue
        value = raw.strip()
        if value and final:
            value = _check_kind(question, value)
        cleaned[question_id] = value[:5000]
    if final:
        missing = [q["text"] for q in questions if q["required"] and not cleaned.get(q["id"])]
        if missing:
            raise Invalid(
                "Answer the required questions first: %(questions)s",
                field="answers",
                questions="; ".join(missing),
            )
    return cleaned


def _check_kind(question: dict[str, Any], value: str) -> str:
    """One answer by its question's kind; a refusal names the answer's own field."""
    kind, field = question["kind"], f"answers[{question['id']}]"
    if kind == "phone":
        try:
            return normalise_phone(value)
        except Invalid as refused:
            raise Invalid(refused.template, field=field, **refused.params) from None
    if kind == "date":
        return _check_date(question, value, field)
    if kind == "yesno" and value not in YES:
        raise Invalid("%(question)s: answer yes or no.", field=field, question=question["text"])
    if kind == "choice" and value not in question["choices"]:
        raise Invalid(
            "%(question)s: pick one of the choices.", field=field, question=question["text"]
        )
    return value


# A date answer outside these is a slip of the keyboard (the year 0001 once went through).
EARLIEST_DATE, LATEST_DATE = date(1900, 1, 1), date(2099, 12, 31)


def _check_date(question: dict[str, Any], value: str, field: str) -> str:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise Invalid(
            "%(question)s: enter a date.", field=field, question=question["text"]
        ) from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise Invalid(
            "%(question)s: enter a date between %(first)s and %(last)s.",
            field=field,
            question=question["text"],
            first=EARLIEST_DATE.strftime("%-d.%-m.%Y"),
            last=LATEST_DATE.strftime("%-d.%-m.%Y"),
        )
    return day.isoformat()


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines() if line.strip()]
