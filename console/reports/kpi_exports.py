"""The KPI numbers as files: CSV and XLSX with the very values the screen shows, labelled in
the reader's language. The CSV is one table (`section, key, label, value`) a program can read and
a spreadsheet can open (UTF-8 with a byte-order mark, so Excel reads the Hebrew); the XLSX has a
sheet each for the numbers, the channels and the days, right to left in Hebrew."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from console.base import labels
from console.base.csv_files import CSV_TYPE as CSV_TYPE
from console.base.csv_files import csv_bytes
from console.base.csv_files import safe_cell as _safe
from console.base.i18n import direction
from console.base.i18n import gettext as _
from console.reports.kpi_report import KpiReport, day_label
from console.reports.kpis import metrics

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def filename(report: KpiReport, extension: str) -> str:
    period = report.period
    return f"kpis-{report.business.slug}-{period.first}-{period.last}.{extension}"


def rows(report: KpiReport) -> Iterator[tuple[str, str, str, Any]]:
    """(section, key, label, value) for every number, in the screen's order."""
    kpis, period = report.kpis, report.period
    yield "period", "business", _("Business"), report.business.name
    yield "period", "from", _("From date"), period.first.isoformat()
    yield "period", "to", _("To date"), period.last.isoformat()
    yield "period", "timezone", _("Time zone"), kpis.timezone
    for metric in metrics(kpis):
        yield "kpi", metric.key, metric.label, metric.value
    for metric in report.feedback_metrics:
        yield "feedback", metric.key, metric.label, metric.value
    for channel, count in kpis.by_channel.items():
        yield "channel", channel, labels.label("channel", channel), count
    for day, count in kpis.by_day:
        yield "day", day.isoformat(), day_label(day), count


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def to_csv(report: KpiReport) -> bytes:
    header = ("section", "key", "label", "value")
    return csv_bytes([header, *((s, k, label, _text(v)) for s, k, label, v in rows(report))])


def to_xlsx(report: KpiReport) -> bytes:
    kpis, period = report.kpis, report.period
    book = Workbook()
    summary = book.active
    summary.title = _("KPIs")[:31]
    bold = Font(bold=True)
    summary.append([_safe(report.business.name)])
    summary.append([_("From date"), period.first])
    summary.append([_("To date"), period.last])
    summary.append([])
    summary.append([_("Number"), _("Value"), "key"])
    for metric in [*metrics(kpis), *report.feedback_metrics]:
        value: Any = float(metric.value) if isinstance(metric.value, Decimal) else metric.value
        summary.append([metric.label, value, metric.key])
        if metric.unit == "money" and value is not None:
            summary.cell(row=summary.max_row, column=2).number_format = "#,##0.00"
    channels = book.create_sheet(_("By channel")[:31])
    channels.append([_("Channel"), _("Leads"), "key"])
    for channel, count in kpis.by_channel.items():
        channels.append([labels.label("channel", channel), count, channel])
    days = book.create_sheet(_("By day")[:31])
    days.append([_("Day"), _("Leads")])
    for day, count in kpis.by_day:
        days.append([day, count])
        days.cell(row=days.max_row, column=1).number_format = "yyyy-mm-dd"
    for sheet in book.worksheets:
        sheet.sheet_view.rightToLeft = direction() == "rtl"
        sheet.column_dimensions["A"].width = 44 if sheet is summary else 16
        sheet.column_dimensions["B"].width = 14
        for cell in sheet[1]:
            cell.font = bold
    for cell in summary[5]:
        cell.font = bold
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
