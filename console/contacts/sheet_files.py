"""Reading an uploaded table (CSV or XLSX) within bounds, whatever the file holds.

Every bound is measured while reading, never taken from what the file declares: its size; its
rows (a row counts by its place in the file, so empty rows cannot hide a far cell); its columns;
each cell's length and the text in all; for an XLSX, the bytes it unpacks to (counted while
unpacking, so a zip bomb stops at the limit), its parts and its shared strings; and the time it
takes. An XLSX's XML may declare no DTD (hence no entities, nothing external: defusedxml refuses
them) and is scanned whole before openpyxl reads it, so openpyxl only ever sees a bounded sheet.
Text is UTF-8, or Windows Hebrew (cp1255) that reads as Hebrew. Past a bound the file is refused
at once: 413 when it is too big, 422 otherwise, with a message for the file field.

`read_upload` runs the read on a thread, one file at a time in a process, so the event loop
keeps answering everyone else; the caller does it before opening its transaction.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax import SAXException
from xml.sax.handler import ContentHandler
from xml.sax.xmlreader import AttributesImpl

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

from console.base.characters import without_controls
from console.base.errors import Invalid, TooLarge, UnsupportedMedia

MAX_FILE_BYTES = 738_000  # the web's: contact_import.max_file_bytes of the default 1 MB body
COMMAND_LINE_BYTES = 10_000_000  # `mazkira import-contacts` reads from disk: the rest still holds
MAX_ROWS = 9_999  # data rows: 10,000 and more are refused (import them in parts)
MAX_COLUMNS = 100
MAX_CELL_CHARS = 100_000  # under the csv module's own field limit (131,072)
MAX_TEXT_CHARS = 8_000_000  # all the cells together (an XLSX may repeat one long string)
MAX_UNPACKED_BYTES = 24_000_000  # an XLSX's parts, unpacked
MAX_PARTS = 500
MAX_SHARED_STRINGS = 200_000  # openpyxl loads them all at once, in about 2 s a 100,000
MAX_ELEMENTS = 2_000_000  # XML elements in all the parts: 24 MB of Excel's cells hold fewer
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384  # Excel's own sheet: past it, not a workbook
READ_SECONDS = 20.0  # the largest accepted files take a few seconds on a busy machine
CHUNK = 65_536

HEBREW = re.compile(r"[\u05d0-\u05ea]")
MISREAD = re.compile(r"[A-Za-z][\u05d0-\u05ea]|[\u05d0-\u05ea][A-Za-z]")


@dataclass(frozen=True)
class Sheet:
    headers: list[str]
    rows: list[list[str]]  # the data rows, empty ones left out


def read_sheet(
    filename: str,
    content: bytes,
    *,
    max_bytes: int = COMMAND_LINE_BYTES,
    seconds: float = READ_SECONDS,
) -> Sheet:
    """The table in a CSV or XLSX file, or the refusal saying which bound it passed (the web
    passes its own `max_bytes`)."""
    if len(content) > max_bytes:
        raise TooLarge(
            "The file is %(size)s kB; files up to %(limit)s kB can be imported (split it).",
            field="file",
            size=-(-len(content) // 1000),
            limit=max_bytes // 1000,
        )
    table = Table(time.monotonic() + seconds)
    name = filename.lower()
    if name.endswith(".xlsx") and content.startswith(b"PK"):
        _read_xlsx(content, table)
    elif name.endswith(".csv"):
        _read_csv(content, table)
    else:
        raise _unreadable()
    return table.sheet()


_turns: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None


async def read_upload(
    filename: str, content: bytes, *, max_bytes: int = MAX_FILE_BYTES, seconds: float = READ_SECONDS
) -> Sheet:
    """`read_sheet` on a thread, one file at a time (each is bounded in memory, so several
    at once are not), while the event loop serves everyone else."""
    global _turns
    loop = asyncio.get_running_loop()
    if _turns is None or _turns[0] is not loop:
        _turns = (loop, asyncio.Semaphore(1))
    async with _turns[1]:
        return await asyncio.to_thread(
            read_sheet, filename, content, max_bytes=max_bytes, seconds=seconds
        )


@dataclass
class Table:
    """The rows as they are read, each checked against the bounds as it comes."""

    deadline: float
    rows: list[list[str]] = field(default_factory=list)
    first: int = 0  # the header's row in the file
    chars: int = 0

    def in_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise Invalid(
                "The file took too long to read; save it again as CSV or split it.", field="file"
            )

    def add(self, number: int, cells: Sequence[str]) -> None:
        """Row `number` of the file (1 = the first)."""
        self.in_time()
        width = len(cells)
        while width and (not cells[width - 1] or cells[width - 1].isspace()):
            width -= 1
        if not width:
            return  # an empty row: counted by its place, not kept
        self.first = self.first or number
        self.check_place(number, width)
        for cell in cells[:width]:
            if len(cell) > MAX_CELL_CHARS:
                raise Invalid(
                    "Row %(row)s has a cell longer than %(limit)s characters.",
                    field="file",
                    row=number,
                    limit=MAX_CELL_CHARS,
                )
            self.chars += len(cell)
        if self.chars > MAX_TEXT_CHARS:
            raise TooLarge(
                "The file holds more than %(limit)s characters of text; split it.",
                field="file",
                limit=MAX_TEXT_CHARS,
            )
        # a spreadsheet's stray control characters (a vertical tab pasted from Word) are not
        # the person's name: kept without them, as a provider's message is
        self.rows.append([without_controls(cell) for cell in cells[:width]])

    def check_place(self, last_row: int, widest: int) -> None:
        if last_row - (self.first or 1) > MAX_ROWS:
            raise Invalid(
                "The file has %(rows)s rows; import at most %(limit)s at a time (split the file).",
                field="file",
                rows=last_row - (self.first or 1),
                limit=MAX_ROWS,
            )
        if widest > MAX_COLUMNS:
            raise Invalid(
                "The file has %(columns)s columns; at most %(limit)s can be imported.",
                field="file",
                columns=widest,
                limit=MAX_COLUMNS,
            )

    def sheet(self) -> Sheet:
        if not self.rows:
            raise Invalid("The file is empty.", field="file")
        headers = [cell.strip() for cell in self.rows[0]]
        width = len(headers)
        return Sheet(headers, [(row + [""] * width)[:width] for row in self.rows[1:]])


# --------------------------------------------------------------------------- CSV


def _read_csv(content: bytes, table: Table) -> None:
    text = _decoded(content)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:4096], ",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        for number, row in enumerate(reader, start=1):
            table.add(number, row)
    except csv.Error:
        raise Invalid(
            "Row %(row)s cannot be read as CSV (a cell too long, or a quote left open).",
            field="file",
            row=reader.line_num,
        ) from None


def _decoded(content: bytes) -> str:
    """UTF-8 (with or without its mark), or Windows Hebrew when it reads as Hebrew; any other
    encoding would import garbled names, so it is refused instead."""
    if content.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _not_utf8()
    if b"\x00" in content:
        raise _unreadable()
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = content.decode("cp1255")
    except UnicodeDecodeError:
        raise _not_utf8() from None
    if not HEBREW.search(text) or MISREAD.search(text):
        raise _not_utf8()
    return text


def _not_utf8() -> Invalid:
    return Invalid(
        "The file's text is not in UTF-8: in Excel, save it as “CSV UTF-8”.", field="file"
    )


# --------------------------------------------------------------------------- XLSX


def _read_xlsx(content: bytes, table: Table) -> None:
    shapes = _scan_parts(content, table)
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # openpyxl's many ways of finding a part missing or malformed
        raise _unreadable() from None
    try:
        if not book.worksheets:
            raise _unreadable()
        sheet = book.worksheets[0]
        shape = shapes.get(str(getattr(sheet, "_worksheet_path", "")).lstrip("/"))
        if shape is None:  # the sheet openpyxl would read was not scanned as XML
            raise _unreadable()
        if not shape.last_row:
            return
        table.first = shape.first_row
        table.check_place(shape.last_row, shape.widest)
        rows = sheet.iter_rows(
            min_row=shape.first_row,
            max_row=shape.last_row,
            max_col=shape.widest,
            values_only=True,
        )
        for number, values in enumerate(rows, start=shape.first_row):
            table.add(number, [_cell(value) for value in values])
    except (UnsupportedMedia, Invalid, TooLarge):
        raise
    except Exception:
        raise _unreadable() from None
    finally:
        book.close()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number
    return str(value)


@dataclass
class Shape:
    """Where a worksheet's values are, as its cells say (its declared dimension is ignored)."""

    first_row: int = 0
    last_row: int = 0
    widest: int = 0


@dataclass
class Totals:
    elements: int = 0
    strings: int = 0


class _PartScan(ContentHandler):
    """Counts what openpyxl would hold: a worksheet's rows and cells, shared strings."""

    def __init__(self, shape: Shape, totals: Totals) -> None:
        super().__init__()
        self.shape, self.totals = shape, totals
        self.row = self.column = self.cells = 0
        self.valued = False

    def startElement(self, name: str, attrs: AttributesImpl) -> None:
        self.totals.elements += 1
        if self.totals.elements > MAX_ELEMENTS:
            raise TooLarge("The file holds too much to read at once; split it.", field="file")
        tag = name.rpartition(":")[2]
        if tag == "row":
            self.row = _number(attrs.get("r"), self.row + 1, EXCEL_ROWS)
            self.column = self.cells = 0
        elif tag == "c":
            self.cells += 1
            self.column = _column(attrs.get("r"), self.column + 1)
            self.valued = False
            if self.cells > EXCEL_COLUMNS:
                raise _not_a_workbook()
        elif tag in ("v", "is"):
            self.valued = True
        elif tag == "si":
            self.totals.strings += 1
            if self.totals.strings > MAX_SHARED_STRINGS:
                raise TooLarge(
                    "The file holds more than %(limit)s different texts; split it.",
                    field="file",
                    limit=MAX_SHARED_STRINGS,
                )

    def endElement(self, name: str) -> None:
        if self.valued and name.rpartition(":")[2] == "c":
            self.valued = False
            shape = self.shape
            shape.first_row = min(shape.first_row or self.row, self.row)
            shape.last_row = max(shape.last_row, self.row)
            shape.widest = max(shape.widest, self.column)


def _scan_parts(content: bytes, table: Table) -> dict[str, Shape]:
    """Every part unpacked as a stream and parsed as XML where it is XML: sizes counted, DTDs
    refused, each worksheet's shape measured."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _unreadable() from None
    if len(parts) > MAX_PARTS:
        raise _not_a_workbook()
    shapes: dict[str, Shape] = {}
    totals, unpacked = Totals(), 0
    for part in parts:
        shape = Shape()
        parser = DefusedExpatParser(forbid_dtd=True)
        parser.setContentHandler(_PartScan(shape, totals))
        xml = True
        try:
            with archive.open(part) as stream:
                for chunk in iter(lambda: stream.read(CHUNK), b""):
                    unpacked += len(chunk)
                    if unpacked > MAX_UNPACKED_BYTES:
                        raise TooLarge(
                            "The file unpacks to more than %(limit)s MB; split it.",
                            field="file",
                            limit=MAX_UNPACKED_BYTES // 1_000_000,
                        )
                    table.in_time()
                    xml = xml and _fed(parser, chunk)
            xml = xml and _fed(parser, b"", close=True)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError):
            raise _unreadable() from None
        except zlib.error:
            raise _unreadable() from None
        if xml:
            shapes[part.filename.lstrip("/")] = shape
    return shapes


def _fed(parser: DefusedExpatParser, chunk: bytes, *, close: bool = False) -> bool:
    """False once the part shows it is not XML (a picture); a DTD refuses the whole file."""
    try:
        parser.close() if close else parser.feed(chunk)
    except DefusedXmlException:
        raise Invalid(
            "The file holds XML with a document type (DTD), which a workbook never needs.",
            field="file",
        ) from None
    except SAXException:
        return False
    return True


def _number(text: str | None, default: int, limit: int) -> int:
    number = default if text is None else int(text) if text.isdigit() else 0
    if not 0 < number <= limit:
        raise _not_a_workbook()
    return number


def _column(reference: str | None, default: int) -> int:
    """The column of a cell reference such as "AB12" (1 = A)."""
    if reference is None:
        return default
    letters = reference.rstrip("0123456789")
    if not letters or len(letters) > 3 or not letters.isalpha() or not letters.isascii():
        raise _not_a_workbook()
    column = 0
    for letter in letters.upper():
        column = column * 26 + ord(letter) - 64
    if column > EXCEL_COLUMNS:
        raise _not_a_workbook()
    return column


def _unreadable() -> UnsupportedMedia:
    return UnsupportedMedia("Upload a CSV or XLSX file.", field="file")


def _not_a_workbook() -> Invalid:
    return Invalid("The file is not a workbook Excel would open.", field="file")
