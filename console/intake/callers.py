"""Who is calling, as a call's lead names them: the caller's number when there is one, and the
subject saying a number was withheld or unreadable. Both the SIP path (console/voice) and
Twilio's voice webhook name their callers this way."""

from __future__ import annotations

from console.base.errors import Invalid
from console.base.i18n import gettext
from console.contacts.contacts import normalise_phone

# What carriers send when the caller withholds the number (RFC 3323 "anonymous", and others';
# Twilio's "+266696687" spells ANONYMOUS on a keypad).
WITHHELD = frozenset(
    {"", "anonymous", "unknown", "restricted", "private", "unavailable", "+266696687"}
)


def caller_number(caller: str) -> str | None:
    """The caller's number in E.164; None when withheld or not a phone number."""
    if caller.strip().lower() in WITHHELD:
        return None
    try:
        return normalise_phone(caller)
    except Invalid:
        return None


def call_subject(caller: str, *, missed: bool) -> str:
    """A call's lead's subject, in the current language: a missed call asks for a call-back, and
    a number withheld or unreadable says so (with the number as received), so nobody calls
    back blindly."""
    if caller_number(caller) is not None:
        return gettext("Missed call: call back") if missed else gettext("Incoming call")
    if caller.strip().lower() in WITHHELD:
        if missed:
            return gettext("Missed call: number withheld")
        return gettext("Incoming call: number withheld")
    if missed:
        return gettext("Missed call from %(number)s: check the number") % {"number": caller}
    return gettext("Incoming call from %(number)s: check the number") % {"number": caller}
