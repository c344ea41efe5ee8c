"""Every CSV and .xlsx file the product writes goes through here (formula-injection guard).

A spreadsheet program treats a cell that starts with `=`, `+`, `-`, `@`, tab or carriage
return as a formula (OWASP, "CSV Injection"): a return reason `=HYPERLINK("http://x","点此")`
or a file named `=1+2+cmd.pdf` would run when the office opens the export. `neutralise_cell`
prefixes such text with a single quote, so it shows as typed and is never evaluated. Numbers
stay numbers (a negative Decimal is a value, not text); only strings are changed.

`safe_csv_writer` wraps `csv.writer`; `xlsx_bytes` writes one sheet with openpyxl, numbers as
numbers, times as Asia/Shanghai wall-clock times, and every string through the same guard.
Reading one (the people import): `uncalculated_formulas` finds the formula cells a file holds
no result for, which a reader of values would take for empty cells. No Flask here.
"""

from __future__ import annotations

import csv
import datetime as dt
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from io import BytesIO
from typing import IO, Any, Final

from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.read_only import ReadOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

FORMULA_PREFIXES: Final = ("=", "+", "-", "@", "\t", "\r")
XLSX_CONTENT_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DISPLAY_ZONE: Final = zoneinfo.ZoneInfo("Asia/Shanghai")
_XLSX_TIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"
_XLSX_DATE_FORMAT: Final = "yyyy-mm-dd"
_MAX_COLUMN_WIDTH: Final = 60
# openpyxl refuses these in cell text (XML 1.0); they carry no meaning in a report.
_ILLEGAL_XML = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])


def neutralise_cell(value: Any) -> Any:
    """Return `value` safe for a spreadsheet: text a formula could start with gets a `'`.

    Only `str` values change; numbers, dates and None are returned as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """Return a row with every cell passed through `neutralise_cell`."""
    return [neutralise_cell(v) for v in values]


class SafeCsvWriter:
    """A `csv.writer` whose rows go through the formula-injection guard."""

    def __init__(self, stream: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one guarded row."""
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write guarded rows."""
        for row in rows:
            self.writerow(row)


def safe_csv_writer(stream: IO[str], **kwargs: Any) -> SafeCsvWriter:
    """Return a CSV writer on `stream` that neutralises formula-like cells."""
    return SafeCsvWriter(stream, **kwargs)


def _xlsx_value(value: Any) -> Any:
    """Convert a value for openpyxl: aware times to Shanghai wall-clock, text guarded."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # stored times are UTC
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(DISPLAY_ZONE).replace(tzinfo=None, microsecond=0)
    if isinstance(value, Decimal):
        return value if value.is_finite() else str(value)
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str):
        return neutralise_cell(value.translate(_ILLEGAL_XML))
    return value


def xlsx_bytes(
    title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    widths: Sequence[float] | None = None,
) -> bytes:
    """Return a one-sheet .xlsx: optional caption line, a bold header row, then `rows`.

    Times are shown in Asia/Shanghai (naive UTC datetimes are taken as UTC), Decimals as
    numbers, booleans as 是/否, and every string through `neutralise_cell`. Column widths are
    fitted to the content, which holds the rows in memory; give `widths` (characters) for
    long exports such as the audit log, and rows are streamed instead.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(title))
    converted: Iterable[list[Any]] = ([_xlsx_value(v) for v in row] for row in rows)
    if widths is None:
        fitted = [max(_display_width(h), 8) for h in headers]
        buffered = list(converted)
        for values in buffered:
            for n, v in enumerate(values[: len(fitted)]):
                fitted[n] = min(max(fitted[n], _display_width(v)), _MAX_COLUMN_WIDTH)
        widths, converted = fitted, buffered
    # A write-only sheet takes widths and frozen panes before its first row.
    for n, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(n)].width = width
    sheet.freeze_panes = "A3" if caption else "A2"
    bold = Font(bold=True)
    if caption:
        cell = WriteOnlyCell(sheet, value=_xlsx_value(caption))
        cell.font = bold
        sheet.append([cell])
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=_xlsx_value(header))
        cell.font = bold
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        header_cells.append(cell)
    sheet.append(header_cells)
    for values in converted:
        sheet.append([_styled(sheet, v) for v in values])
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _styled(sheet: Any, value: Any) -> Any:
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = _XLSX_TIME_FORMAT
        return cell
    if isinstance(value, dt.date):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = _XLSX_DATE_FORMAT
        return cell
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"  # never a formula, whatever the text
        return cell
    return value


def _display_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, dt.datetime):
        return 20
    text = str(value)
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text) + 2


def _sheet_title(title: str) -> str:
    """Return a sheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    cleaned = "".join("_" if ch in "[]:*?/\\" else ch for ch in title).strip("'") or "Sheet1"
    return cleaned[:31]


def _first_sheet_cells(data: bytes, *, data_only: bool) -> Iterator[ReadOnlyCell]:
    book = load_workbook(BytesIO(data), read_only=True, data_only=data_only)
    try:
        for row in book.worksheets[0].iter_rows():
            yield from (cell for cell in row if isinstance(cell, ReadOnlyCell))
    finally:
        book.close()


def uncalculated_formulas(data: bytes) -> list[tuple[int, int]]:
    """Return the (row, column), 1-based in reading order, of the first sheet's formula cells
    the file holds no result for.

    A spreadsheet stores a formula with the result it last computed; a file written by a
    script (openpyxl, pandas) has the formula alone, until Excel, WPS or LibreOffice open and
    save it. Read for values, such a cell is empty, whatever it would show. A formula whose
    result is empty text has one (those programs mark it as text: `t="str"`).
    """
    formulas = {
        (cell.row, cell.column)
        for cell in _first_sheet_cells(data, data_only=False)
        if cell.data_type == "f"
    }
    if not formulas:
        return []
    return [
        (cell.row, cell.column)
        for cell in _first_sheet_cells(data, data_only=True)
        if (cell.row, cell.column) in formulas and cell.value is None and cell.data_type != "str"
    ]
