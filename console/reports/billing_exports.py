"""A month's billing of every business as files: CSV (keys as the header, money in whole agorot,
UTF-8 with a byte-order mark for Excel) and XLSX (the reader's labels, the same values), cells
that a spreadsheet would run as a formula escaped as in the other exports."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from console.base.csv_files import CSV_TYPE, csv_bytes
from console.base.csv_files import safe_cell as _safe
from console.base.i18n import direction
from console.base.i18n import gettext as _
from console.reports.billing import Statement
from console.reports.kpi_exports import XLSX_TYPE, _text

__all__ = ["CSV_TYPE", "KEYS", "XLSX_TYPE", "filename", "labels", "rows", "to_csv", "to_xlsx"]

KEYS = (
    "business_id",
    "business",
    "month",
    "monthly_fee_agorot",
    "calls",
    "included_calls",
    "calls_over",
    "calls_agorot",
    "talk_minutes",
    "included_minutes",
    "minutes_over",
    "minutes_agorot",
    "messages_in",
    "messages_out",
    "included_messages",
    "messages_over",
    "messages_agorot",
    "subtotal_agorot",
    "vat_percent",
    "vat_agorot",
    "total_agorot",
)


def labels() -> list[str]:
    return [
        "id",
        _("Business"),
        _("Month"),
        _("Monthly fee (agorot)"),
        _("Calls"),
        _("Calls included"),
        _("Calls beyond"),
        _("Calls beyond (agorot)"),
        _("Talk minutes"),
        _("Minutes included"),
        _("Minutes beyond"),
        _("Minutes beyond (agorot)"),
        _("Messages in"),
        _("Messages out"),
        _("Messages included"),
        _("Messages beyond"),
        _("Messages beyond (agorot)"),
        _("Before VAT (agorot)"),
        _("VAT (%)"),
        _("VAT (agorot)"),
        _("Total (agorot)"),
    ]


def rows(found: Sequence[Statement]) -> Iterator[list[Any]]:
    for statement in found:
        usage = statement.usage
        row: list[Any] = [
            str(statement.business_id),
            statement.business_name,
            statement.month_key,
        ]
        calls, minutes, messages = (statement.line(k) for k in ("calls", "minutes", "messages"))
        billed = statement.plan is not None
        row += [
            statement.fee_agorot if billed else None,
            usage.calls,
            calls.included if calls else None,
            int(calls.over) if calls else None,
            calls.amount_agorot if calls else None,
            usage.talk_minutes,
            minutes.included if minutes else None,
            float(minutes.over) if minutes else None,
            minutes.amount_agorot if minutes else None,
            usage.messages_in,
            usage.messages_out,
            messages.included if messages else None,
            int(messages.over) if messages else None,
            messages.amount_agorot if messages else None,
            statement.subtotal_agorot if billed else None,
            float(statement.vat_percent) if billed else None,
            statement.vat_agorot if billed else None,
            statement.total_agorot if billed else None,
        ]
        yield row


def filename(month: date, extension: str) -> str:
    return f"billing-{month:%Y-%m}.{extension}"


def to_csv(found: Sequence[Statement]) -> bytes:
    return csv_bytes([KEYS, *([_text(value) for value in row] for row in rows(found))])


def to_xlsx(found: Sequence[Statement]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = _("Billing")[:31]
    sheet.append(labels())
    for row in rows(found):
        sheet.append([_safe(value) if isinstance(value, str) else value for value in row])
    sheet.sheet_view.rightToLeft = direction() == "rtl"
    sheet.column_dimensions["A"].width = 38
    sheet.column_dimensions["B"].width = 24
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
