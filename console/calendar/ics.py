"""iCalendar written by hand (RFC 5545): CRLF, lines folded at 75 octets, TEXT escaped, times in
UTC. The business's feed (console/calendar/calendar_feed.py) and the .ics a contact receives
with a confirmation (console/calendar/appointments.py) are made of the same events."""

from __future__ import annotations

from datetime import UTC, datetime

from console.base.characters import without_bidi_controls
from models import Contact
from models.records import Appointment

PRODID = "-//Mazkira//Appointments//EN"


def ics_text(value: str) -> str:
    """A TEXT value escaped as RFC 5545 §3.3.11 asks, without the bidirectional controls (a
    calendar shows it as plain text, where a name could read as another number)."""
    return (
        without_bidi_controls(value)
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space (§3.1)."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line
    parts: list[str] = []
    current = b""
    limit = 75
    for char in line:
        piece = char.encode()
        if len(current) + len(piece) > limit:
            parts.append(current.decode())
            current = b""
            limit = 74  # the leading space counts
        current += piece
    parts.append(current.decode())
    return "\r\n ".join(parts)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event(
    appointment: Appointment,
    summary: str,
    *,
    now: datetime,
    description: str = "",
) -> list[str]:
    """One VEVENT: its UID stays the meeting's, its SEQUENCE grows with each move, so a calendar
    that holds it replaces it; a cancelled meeting is STATUS:CANCELLED, so calendars drop it."""
    lines = [
        "BEGIN:VEVENT",
        f"UID:{appointment.id}@mazkira",
        f"SEQUENCE:{appointment.sequence or 0}",
        f"DTSTAMP:{stamp(appointment.cancelled_at or appointment.created_at or now)}",
        f"DTSTART:{stamp(appointment.starts_at)}",
        f"DTEND:{stamp(appointment.ends_at)}",
        f"SUMMARY:{ics_text(summary)}",
    ]
    if appointment.location:
        lines.append(f"LOCATION:{ics_text(appointment.location)}")
    if description:
        lines.append(f"DESCRIPTION:{ics_text(description)}")
    status = "CANCELLED" if appointment.cancelled_at else "CONFIRMED"
    return [*lines, f"STATUS:{status}", "END:VEVENT"]


def calendar(events: list[list[str]], *, headers: list[str] | None = None) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        *(headers or []),
    ]
    for found in events:
        lines += found
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def who(contact: Contact | None) -> str:
    return (contact.name or contact.phone or contact.email or "") if contact else ""
