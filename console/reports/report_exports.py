"""The agency's reports as files: a CSV per report (keys as the header, a program can read it;
UTF-8 with a byte-order mark for Excel) and one XLSX with a sheet for each, labelled in the
reader's language, holding the very values the screen shows. Cells that a spreadsheet would run
as a formula are escaped as in the KPI exports."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from console.base.csv_files import CSV_TYPE, csv_bytes
from console.base.csv_files import safe_cell as _safe
from console.base.i18n import direction
from console.base.i18n import gettext as _
from console.base.labels import label
from console.reports.kpi_exports import XLSX_TYPE, _text
from console.reports.reports import AgencyReport

__all__ = ["CSV_TYPE", "XLSX_TYPE", "filename", "to_csv", "to_xlsx"]

# Offline is left out: the report is about the time she was at work.
STATES = ("available", "ringing", "on_call", "wrap_up", "break")

SECRETARY_KEYS = (
    "user_id",
    "secretary",
    "leads",
    "calls",
    "talk_minutes",
    "handling_minutes",
    "response_p50",
    "response_p90",
    "rating_average",
    "ratings",
    "phone_answered",
    "phone_talk_seconds",
    "missed_rings",
    "declined_rings",
)
BILLING_KEYS = (
    "business_id",
    "business",
    "month",
    "leads",
    "calls",
    "talk_minutes",
    "messages_in",
    "messages_out",
)

STATE_KEYS = (
    "user_id",
    "secretary",
    "day",
    *(f"{state}_minutes" for state in STATES),
    "signed_in_minutes",
    "occupancy_percent",
)


def secretary_labels() -> list[str]:
    return [
        "id",
        _("Secretary"),
        _("Leads handled"),
        _("Calls"),
        _("Talk time (minutes)"),
        _("Average handling time (minutes)"),
        _("First response, median"),
        _("First response, 90% within"),
        _("Average rating"),
        _("Ratings"),
        _("Phone calls answered"),
        _("Average talk time (seconds)"),
        _("Missed rings"),
        _("Rings declined"),
    ]


def billing_labels() -> list[str]:
    return [
        "id",
        _("Business"),
        _("Month"),
        _("Leads"),
        _("Calls"),
        _("Talk minutes"),
        _("Messages in"),
        _("Messages out"),
    ]


def state_labels() -> list[str]:
    return [
        "id",
        _("Secretary"),
        _("Day"),
        *(label("agent_state", state) for state in STATES),
        _("Signed in"),
        _("Occupancy (%)"),
    ]


def state_rows(report: AgencyReport) -> Iterator[list[Any]]:
    for row in report.state_days:
        yield [
            str(row.user_id),
            row.name,
            row.day.isoformat(),
            *(round(row.of(state) / 60, 1) for state in STATES),
            round(row.signed_in / 60, 1),
            row.occupancy,
        ]


def secretary_rows(report: AgencyReport) -> Iterator[list[Any]]:
    for row in report.secretaries:
        yield [
            str(row.user_id),
            row.name,
            row.leads,
            row.calls,
            row.talk_minutes,
            row.handling_minutes,
            row.response_p50,
            row.response_p90,
            row.rating_average,
            row.ratings,
            row.phone_answered,
            row.phone_talk_seconds,
            row.missed_rings,
            row.declined_rings,
        ]


def billing_rows(report: AgencyReport) -> Iterator[list[Any]]:
    for row in report.months:
        yield [
            str(row.business_id),
            row.business_name,
            row.month_key,
            row.leads,
            row.calls,
            row.talk_minutes,
            row.messages_in,
            row.messages_out,
        ]


def filename(report: AgencyReport, name: str, extension: str) -> str:
    return f"{name}-{report.period.first}-{report.period.last}.{extension}"


def to_csv(report: AgencyReport, which: str) -> bytes:
    """`which` is "secretaries", "billing" or "states"."""
    keys, rows = {
        "secretaries": (SECRETARY_KEYS, secretary_rows(report)),
        "billing": (BILLING_KEYS, billing_rows(report)),
        "states": (STATE_KEYS, state_rows(report)),
    }[which]
    return csv_bytes([keys, *([_text(value) for value in row] for row in rows)])


def to_xlsx(report: AgencyReport) -> bytes:
    book = Workbook()
    secretaries = book.active
    secretaries.title = _("Secretaries")[:31]
    billing = book.create_sheet(_("Businesses per month")[:31])
    states = book.create_sheet(_("Time per state")[:31])
    for sheet, labels, rows in (
        (secretaries, secretary_labels(), secretary_rows(report)),
        (billing, billing_labels(), billing_rows(report)),
        (states, state_labels(), state_rows(report)),
    ):
        sheet.append(labels)
        for row in rows:
            sheet.append([_safe(value) if isinstance(value, str) else value for value in row])
        sheet.sheet_view.rightToLeft = direction() == "rtl"
        sheet.column_dimensions["A"].width = 38
        sheet.column_dimensions["B"].width = 24
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
