"""What the demo agency's work is made of: a customer card, a lead's story and what became of
it, a follow-up task, a conversation's messages; one `Demo` per business (console/demo/businesses).

Read by console.demo.demo, which plays each story through the console's services on a simulated
clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from console.leads.scripts import ScriptDraft

# What became of a lead. Open: "fresh" (arrived 10–60 minutes ago), "new" (waiting longer),
# "claimed" (taken, not answered yet), "live" (the call being logged right now). Handled:
# "contacted", "meeting", "quote", and closed: "won", "lost".
FATES = ("fresh", "new", "claimed", "live", "contacted", "meeting", "quote", "won", "lost")


# The stage a follow-up moves a lead to, and the follow-up: its kind, summary, notes, outcome.
FOLLOW_UPS = {
    "quote": (
        "whatsapp",
        "נשלחה הצעת מחיר",
        "נשלחה הצעת מחיר על סך {value} ₪ מטעם {owner}. נקבע לחזור בעוד יומיים לבדוק אם יש שאלות.",
        "sent_quote",
    ),
    "won": (
        "outbound_call",
        "ההצעה אושרה",
        "אישור טלפוני להצעה על סך {value} ₪. הפרטים הועברו ל{owner} לתיאום מועד.",
        "answered",
    ),
}
LOST_NOTE = "הליד נסגר: {reason}."


@dataclass(frozen=True)
class Card:
    """A customer card; `since_days` > 0 makes a customer of the business from before."""

    name: str
    phone: str
    email: str = ""
    company: str = ""
    abc: str = ""
    channel: str = ""
    notes: str = ""
    value: int = 0  # lifetime value, ILS
    since_days: int = 0


@dataclass(frozen=True)
class FollowUp:
    """A task handed off after the first call, to the owner or to another secretary."""

    title: str
    details: str = ""
    to: str = "owner"  # "owner" or "secretary"
    state: str = "open"  # "open" (due ahead), "done" or "overdue"
    priority: str = "normal"


@dataclass(frozen=True)
class Story:
    """One lead and what became of it."""

    who: int  # index into the business's cards
    channel: str
    subject: str
    message: str
    fate: str
    priority: str = "normal"
    answers: tuple[str, ...] = ()  # q1, q2, ...; a date question takes "+N": N days after the call
    notes: str = ""
    summary: str = ""
    outcome: str = "answered"
    kind: str = ""  # the first interaction's kind when not the channel's usual one
    note: str = ""  # a note left on the lead after the first interaction
    value: int = 0  # quoted or won, ILS
    lost_reason: str = ""
    task: FollowUp | None = None
    # A WhatsApp, SMS or e-mail thread after the first message, as ("out" | "in", text): the
    # secretary's replies, sent through the reply path, and the contact's answers, which arrive
    # from the provider and join this lead. The first reply is the first response.
    conversation: tuple[tuple[str, str], ...] = ()
    # Calls again before anyone answered: each joins the open lead as another attempt.
    repeats: int = 0


@dataclass(frozen=True)
class Demo:
    script: ScriptDraft
    cards: tuple[Card, ...]
    stories: tuple[Story, ...]
    canned: tuple[tuple[str, str], ...] = ()  # the secretaries' canned replies: title, text
