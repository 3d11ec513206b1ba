"""The XLSForm corpus: realistic forms pyxform converts and broken forms it rejects.

The forms are markdown tables (pyxform's `.md` XLSForm format) under `fixtures/xlsforms`, so a
diff shows what a form asks. `md_to_xlsx` turns one into a real workbook, so tests can upload
each form both as `.md` and as the `.xlsx` a user would send. `BROKEN` records, per broken
form, the row and the words pyxform's error gives.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

from openpyxl import Workbook

CORPUS = Path(__file__).resolve().parent / "fixtures" / "xlsforms"
GOOD = CORPUS / "good"
BROKEN_DIR = CORPUS / "broken"

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# A cell boundary is a pipe not escaped with a backslash, as in pyxform's own markdown reader.
_CELL_SPLIT = re.compile(r"(?<!\\)\|")

Sheets = dict[str, list[list[str | None]]]


@dataclass(frozen=True)
class BrokenForm:
    row: int  # the 1-based sheet row pyxform names ("[row : N]"); the header is row 1
    message: str  # words the error message contains


BROKEN: dict[str, BrokenForm] = {
    "ambiguous_reference": BrokenForm(8, "Reference variables names must be unique"),
    "background_geopoint_no_trigger": BrokenForm(3, "the 'trigger' column must not be empty"),
    "calculate_without_calculation": BrokenForm(5, "Missing calculation"),
    "choice_filter_missing_ref": BrokenForm(3, "Could not find the name 'region'"),
    "choice_without_name": BrokenForm(3, "Choices must have a name"),
    "duplicate_choice": BrokenForm(4, "Choice names must be unique for each choice list"),
    "duplicate_name": BrokenForm(5, "the 'name' value 'weight' is invalid"),
    "duplicate_repeat_name": BrokenForm(8, "Repeat names must unique anywhere in the survey"),
    "end_repeat_closes_group": BrokenForm(5, "Unmatched 'end_repeat'"),
    "geopoint_bad_accuracy": BrokenForm(2, "'capture-accuracy' parameter must have a numeric value"),
    "geotrace_bad_incremental": BrokenForm(3, "the 'incremental' parameter may either be 'true'"),
    "invalid_question_name": BrokenForm(3, "Names must begin with a letter or underscore"),
    "malformed_reference": BrokenForm(4, "Reference variables must start with '${'"),
    "meta_name_reserved": BrokenForm(3, "The name 'meta' is reserved for form metadata"),
    "missing_name": BrokenForm(4, "Question or group with no name"),
    "or_other_with_choice_filter": BrokenForm(3, "Choice filter not supported with or_other"),
    "range_step_zero": BrokenForm(3, "the parameter 'step' must not be '0'"),
    "relevant_missing_ref": BrokenForm(4, "Could not find the name 'pregnant'"),
    "repeat_named_like_root": BrokenForm(2, "must not be the same as the survey root"),
    "save_to_reserved_name": BrokenForm(3, "must not be 'name' or 'label'"),
    "save_to_without_entities": BrokenForm(3, "add an entities sheet and declare an entity"),
    "select_from_file_bad_extension": BrokenForm(3, "should end with one of the supported file extensions"),
    "select_unknown_list": BrokenForm(3, "List name not in choices sheet: water_sources"),
    "unclosed_repeat": BrokenForm(3, "Unmatched 'begin_repeat'"),
    "unknown_parameter_key": BrokenForm(3, "The accepted parameter keys for this question type"),
    "unmatched_end_group": BrokenForm(4, "Unmatched 'end_group'"),
}


def good_forms() -> list[Path]:
    """Every form pyxform converts, sorted by name."""
    return sorted(GOOD.glob("*.md"))


def broken_forms() -> list[tuple[Path, BrokenForm]]:
    """Every form pyxform rejects, with the row and message its error gives."""
    return [(BROKEN_DIR / f"{name}.md", expected) for name, expected in sorted(BROKEN.items())]


def md_sheets(md_text: str) -> Sheets:
    """The sheets of a markdown XLSForm: name → rows of cells (None for an empty cell).

    A row whose first cell is filled starts a sheet; the rows after it, without their first
    cell, are that sheet's rows, the first being the header. Lines starting with '#' are
    comments, and rows with no value are dropped, as pyxform's own reader does.
    """
    sheets: Sheets = {}
    current: list[list[str | None]] | None = None
    for line in md_text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            continue  # comments ('#') and prose
        cells = [_cell(c) for c in _CELL_SPLIT.split(stripped)[1:-1]]
        if not cells or all(c is None or set(c) <= set("-:") for c in cells):
            continue  # blank line or a |---| separator
        if cells[0] is not None:
            current = sheets.setdefault(cells[0], [])
        row = cells[1:]
        if current is not None and any(c is not None for c in row):
            current.append(row)
    return sheets


def md_to_xlsx(md_text: str) -> bytes:
    """A real .xlsx workbook with the same sheets, rows and cells as the markdown form."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in md_sheets(md_text).items():
        sheet = workbook.create_sheet(title=name)
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value is None:
                    continue
                cell = sheet.cell(row=r, column=c, value=value)
                cell.data_type = "s"  # "= 'yes'" is a constraint, not a spreadsheet formula
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _cell(raw: str) -> str | None:
    value = raw.strip().replace(r"\|", "|")
    return value or None
