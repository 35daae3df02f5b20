"""Names people read for the codes stored in the database, in the current language."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from console.base.i18n import current_locale, using_locale
from console.base.i18n import gettext as _


def channels() -> dict[str, str]:
    return {
        "phone": _("Phone"),
        "whatsapp": _("WhatsApp"),
        "sms": _("SMS"),
        "email": _("E-mail"),
        "web": _("Web form"),
        "walk-in": _("Walk-in"),
    }


def stages() -> dict[str, str]:
    return {
        "new": _("New"),
        "contacted": _("Contacted"),
        "meeting": _("Meeting"),
        "quote": _("Quote"),
        "won": _("Won"),
        "lost": _("Lost"),
    }


def priorities() -> dict[str, str]:
    return {"low": _("Low"), "normal": _("Normal"), "high": _("High"), "urgent": _("Urgent")}


def kinds() -> dict[str, str]:
    return {
        "inbound_call": _("Inbound call"),
        "outbound_call": _("Outbound call"),
        "whatsapp": _("WhatsApp"),
        "sms": _("SMS"),
        "email": _("E-mail"),
        "note": _("Note"),
    }


def outcomes() -> dict[str, str]:
    return {
        "answered": _("Answered the question"),
        "booked_meeting": _("Booked a meeting"),
        "sent_quote": _("Quote to be sent"),
        "call_back": _("Call back later"),
        "no_answer": _("No answer"),
        "voicemail": _("Left a voicemail"),
        "wrong_number": _("Wrong number"),
        "not_interested": _("Not interested"),
        "transferred_to_owner": _("Passed to the owner"),
        "info_given": _("Information given"),
    }


def task_statuses() -> dict[str, str]:
    return {"open": _("Open"), "done": _("Done"), "cancelled": _("Cancelled")}


def question_kinds() -> dict[str, str]:
    return {
        "text": _("Text"),
        "choice": _("Choice"),
        "phone": _("Phone"),
        "date": _("Date"),
        "yesno": _("Yes / no"),
    }


def roles() -> dict[str, str]:
    return {"admin": _("Admin"), "secretary": _("Secretary"), "owner": _("Owner")}


def member_roles() -> dict[str, str]:
    """A person's role in a business (tenancy.PERMISSIONS)."""
    return {"owner": _("Owner"), "manager": _("Manager"), "staff": _("Staff")}


def request_states() -> dict[str, str]:
    """Where an owner's request to the agency stands (console/agency/change_requests.py)."""
    return {
        "pending": _("Waiting for the agency"),
        "approved": _("Approved"),
        "declined": _("Declined"),
        "withdrawn": _("Replaced by a newer request"),
    }


def request_reasons() -> dict[str, str]:
    """Why an owner's change needs the agency."""
    return {
        "always_open": _("Coverage around the clock (24/7)"),
        "beyond_contract": _("Hours beyond the agency's contract"),
        "timezone": _("Another time zone"),
    }


def deliveries() -> dict[str, str]:
    return {
        "queued": _("Sending…"),
        "sent": _("Sent"),
        "delivered": _("Delivered"),
        "read": _("Read"),
        "failed": _("Not delivered"),
    }


def agent_states() -> dict[str, str]:
    return {
        "available": _("Available for calls"),
        "ringing": _("Ringing"),
        "on_call": _("On a call"),
        "wrap_up": _("Wrap-up"),
        "break": _("Break"),
        "offline": _("Offline"),
    }


def break_reasons() -> dict[str, str]:
    return {
        "rest": _("Short break"),
        "meal": _("Meal"),
        "meeting": _("Meeting"),
        "training": _("Training"),
        "other": _("Other"),
    }


def reaches() -> dict[str, str]:
    """How a person on call wants to be paged (console/tasks/on_call.py)."""
    return {
        "sms": _("SMS"),
        "whatsapp": _("WhatsApp"),
        "email": _("E-mail"),
        "push": _("Push notification"),
        "call": _("Phone call"),
    }


def overflow_actions() -> dict[str, str]:
    """Where a call goes when nobody takes it (console/voice/overflow.py)."""
    return {
        "": _("Ring the secretaries as usual"),
        "callback": _("A call-back lead"),
        "voicemail": _("Voicemail"),
        "on_call": _("The on-call person's phone"),
        "business": _("Another business's team"),
    }


def addressed_as() -> dict[str, str]:
    """How the Hebrew interface speaks to a user (console/base/i18n.FORMS)."""
    return {
        "plural": _("Neutral (plural)"),
        "feminine": _("Feminine"),
        "masculine": _("Masculine"),
    }


LABELS = {
    "addressed_as": addressed_as,
    "agent_state": agent_states,
    "break_reason": break_reasons,
    "channel": channels,
    "stage": stages,
    "priority": priorities,
    "kind": kinds,
    "outcome": outcomes,
    "task_status": task_statuses,
    "question_kind": question_kinds,
    "role": roles,
    "member_role": member_roles,
    "request_state": request_states,
    "request_reason": request_reasons,
    "delivery": deliveries,
    "reach": reaches,
    "overflow": overflow_actions,
}


@lru_cache(maxsize=64)
def _labels(group: str, locale: str) -> dict[str, str]:
    with using_locale(locale):
        return LABELS[group]()


def label(group: str, value: str | None) -> str:
    if value is None:
        return ""
    return _labels(group, current_locale()).get(value, value)


def options(group: str) -> list[tuple[str, str]]:
    return list(_labels(group, current_locale()).items())


def waited(since: datetime, now: datetime) -> str:
    """How long ago, as every time on screen reads: '38 m', '1 h 03 m'."""
    return duration((now - since).total_seconds())


def time_left(due: datetime, now: datetime) -> str:
    """Until the first response is due: '38 m'; past it: 'over by 16 h 38 m'."""
    seconds = (due - now).total_seconds()
    if seconds >= 0:
        return duration(seconds)
    return duration_words()["over"] % {"duration": duration(-seconds)}


def duration(seconds: float, *, days: bool = True) -> str:
    """A length of time, the one way the console writes it: '0 s', '59 s', '38 m', '1 h 03 m',
    '2 d 4 h' (totals in reports stay in hours: `days=False`). Whole units, rounded down.
    static/app.js `duration` is its twin for the clocks that tick, with `duration_words`."""
    words = duration_words()
    whole = max(0, int(seconds))
    if whole < 60:
        return words["s"] % {"seconds": whole}
    hours, minutes = divmod(whole // 60, 60)
    if not hours:
        return words["m"] % {"minutes": minutes}
    if days and hours >= 24:
        return words["d"] % {"days": hours // 24, "hours": hours % 24}
    return words["h"] % {"hours": hours, "minutes": minutes}


def duration_words() -> dict[str, str]:
    """The formats `duration` fills, in the reader's language (the page hands them to its JS)."""
    return _duration_words(current_locale())


@lru_cache(maxsize=8)
def _duration_words(locale: str) -> dict[str, str]:
    with using_locale(locale):
        return {
            "s": _("%(seconds)s s"),
            "m": _("%(minutes)s m"),
            "h": _("%(hours)s h %(minutes)02d m"),
            "d": _("%(days)s d %(hours)s h"),
            "over": _("over by %(duration)s"),
        }
