"""CSV encoding exactly as ODK Central writes it (csv-stringify defaults): comma, `"` quoting
only where needed, `\\n` line endings, empty cells for missing values, UTF-8 without BOM.

The stdlib writer does all the work; one case it gets wrong for this dialect is a lone `\\r`
inside a value (it only quotes the characters of its line terminator), so a batch holding a
`\\r` anywhere is re-encoded with explicit quoting. That check is one scan of the batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from odk_mcp.services.aggregation.exports.domain.rows import Cell

_SPECIAL = (",", '"', "\n", "\r")


def _quoted(cell: Cell) -> str:
    if cell is None:
        return ""
    text = str(cell)
    if any(ch in text for ch in _SPECIAL):
        return '"' + text.replace('"', '""') + '"'
    return text


class CsvEncoder:
    """Turns batches of rows into UTF-8 bytes; keeps one reusable buffer."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def encode(self, rows: Iterable[Sequence[Cell]]) -> bytes:
        batch = rows if isinstance(rows, list) else list(rows)
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerows(batch)
        text = self._buffer.getvalue()
        if "\r" in text:
            text = "".join(",".join(_quoted(c) for c in row) + "\n" for row in batch)
        return text.encode("utf-8")
