"""XLSX: one sheet per table, written row by row with xlsxwriter's constant-memory mode (each
row is flushed to a temporary file once the next one starts), so memory stays flat.

Values are written with explicit types: text is never read as a formula or a link (a value
`=HYPERLINK(…)` stays text), numbers are numbers, the submission date is a date. A sheet
holds at most 1,048,576 rows; a longer table continues on `<name> (2)`, `<name> (3)`…
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import xlsxwriter

from odk_mcp.services.aggregation.exports.domain.rows import TypedCell

MAX_ROWS = 1_048_576
MAX_SHEET_NAME = 31
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def sheet_name(name: str, taken: set[str]) -> str:
    """A valid, unique (case-insensitive) sheet name derived from a table name."""
    base = _BAD_SHEET_CHARS.sub("_", name).strip("'") or "Sheet"
    candidate = base[:MAX_SHEET_NAME]
    counter = 1
    while candidate.lower() in taken:
        counter += 1
        suffix = f" ({counter})"
        candidate = base[: MAX_SHEET_NAME - len(suffix)] + suffix
    taken.add(candidate.lower())
    return candidate


class XlsxWriter:
    def __init__(self, path: Path, tmpdir: Path | None = None, max_rows: int = MAX_ROWS) -> None:
        self._book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                "tmpdir": str(tmpdir) if tmpdir is not None else None,
            },
        )
        self._date = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss.000"})
        self._bold = self._book.add_format({"bold": True})
        self._taken: set[str] = set()
        self._max_rows = max_rows
        self._name = ""
        self._headers: list[str] = []
        self._sheet: xlsxwriter.worksheet.Worksheet | None = None
        self._row = 0

    def start_table(self, name: str, headers: Sequence[str]) -> None:
        self._name = name
        self._headers = list(headers)
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheet = self._book.add_worksheet(sheet_name(self._name, self._taken))
        self._sheet.write_row(0, 0, self._headers, self._bold)
        self._row = 1

    def write(self, rows: Sequence[Sequence[TypedCell]]) -> None:
        sheet = self._sheet
        if sheet is None:
            raise RuntimeError("start_table first")
        for row in rows:
            if self._row >= self._max_rows:
                self._new_sheet()
                sheet = self._sheet
                assert sheet is not None
            r = self._row
            for c, cell in enumerate(row):
                if cell is None:
                    continue
                if isinstance(cell, str):
                    sheet.write_string(r, c, cell)
                elif isinstance(cell, datetime):
                    sheet.write_datetime(r, c, cell.replace(tzinfo=None), self._date)
                else:
                    sheet.write_number(r, c, cell)
            self._row += 1

    def close(self) -> None:
        self._book.close()
