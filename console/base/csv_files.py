"""Every CSV the product writes goes through `csv_bytes`: UTF-8 with a byte-order mark (without
it Excel reads the Hebrew as Windows-1252 gibberish), CRLF between rows as RFC 4180 says, and
no cell a spreadsheet would run as a formula (`safe_cell`, also for the XLSX files)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

CSV_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_bytes(rows: Iterable[Sequence[object]]) -> bytes:
    """The rows (the header first) as a CSV file; None is an empty cell, text is made safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(["" if cell is None else safe_cell(str(cell)) for cell in row])
    return (BOM + buffer.getvalue()).encode("utf-8")


def safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (a name or label starting with =);
    a number, negative ones included, stays a number."""
    return "'" + text if text[:1] in FORMULA_STARTS and not _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
