"""XLSForm → XForm conversion with pyxform, in worker processes bounded in time and memory.

pyxform runs in a separate process (pebble's ProcessPool): a hostile or enormous
spreadsheet can exhaust neither the server's event loop, nor its memory (the worker has an
address-space limit), nor its time (the worker is killed at the timeout). Input is passed as
bytes, never as a path a user could influence.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import resource
import zipfile
from dataclasses import dataclass, field
from typing import Any

from pebble import ProcessPool

SPREADSHEET_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
    "application/vnd.ms-excel": ".xls",
    "text/csv": ".csv",
    "text/markdown": ".md",
}
ZIP_TYPES = frozenset({".xlsx", ".xlsm"})


@dataclass(frozen=True)
class ConversionResult:
    """Either an XForm (with pyxform's warnings and external itemsets) or an error message."""

    xform: str | None = None
    warnings: list[str] = field(default_factory=list)
    itemsets: str | None = None
    error: str | None = None
    error_kind: str | None = None  # "xlsform" (pyxform rejected it) | "input" (not a spreadsheet)


def _limit_memory(max_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def _check_zip(data: bytes, max_unzipped: int) -> str | None:
    """Refuse zip bombs before pyxform opens the file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        return "The file is not a valid XLSX workbook."
    if total > max_unzipped:
        return f"The workbook expands to {total} bytes, more than the {max_unzipped} allowed."
    return None


def convert_in_worker(
    data: bytes, file_type: str, fallback_id: str | None, max_unzipped: int
) -> ConversionResult:
    """Runs inside a worker process: convert bytes, never raise (errors are results)."""
    from pyxform.builder import create_survey_element_from_dict
    from pyxform.errors import PyXFormError
    from pyxform.xls2json import workbook_to_json
    from pyxform.xls2json_backends import get_xlsform
    from pyxform.xls2xform import external_choices_to_csv, has_external_choices

    if file_type in ZIP_TYPES:
        problem = _check_zip(data, max_unzipped)
        if problem:
            return ConversionResult(error=problem, error_kind="input")
    warnings: list[str] = []
    try:
        workbook = get_xlsform(xlsform=io.BytesIO(data), file_type=file_type)
        if fallback_id:
            workbook.fallback_form_name = fallback_id
        json_form = workbook_to_json(
            workbook_dict=workbook, fallback_form_name=workbook.fallback_form_name, warnings=warnings
        )
        itemsets = (
            external_choices_to_csv(workbook_dict=workbook) if has_external_choices(json_form) else None
        )
        survey = create_survey_element_from_dict(json_form)
        xform = survey.to_xml(validate=False, pretty_print=False, warnings=warnings)
    except PyXFormError as exc:
        return ConversionResult(error=str(exc), error_kind="xlsform")
    except MemoryError:
        return ConversionResult(
            error="The XLSForm needs more memory than allowed to convert.", error_kind="input"
        )
    except Exception as exc:  # noqa: BLE001 - malformed files make readers fail in many ways
        return ConversionResult(error=f"Could not read the file as an XLSForm: {exc}", error_kind="input")
    return ConversionResult(xform=xform, warnings=warnings, itemsets=itemsets)


class ConversionTimeout(Exception):
    """The worker ran out of time and was stopped."""


class ConversionCrashed(Exception):
    """The worker died (for example, killed at its memory limit)."""


class Converter:
    def __init__(
        self, workers: int, timeout_seconds: float, memory_bytes: int, max_unzipped_bytes: int
    ) -> None:
        self._workers = workers
        self._timeout = timeout_seconds
        self._memory = memory_bytes
        self._max_unzipped = max_unzipped_bytes
        self._pool: ProcessPool | None = None

    def _get_pool(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            self._pool = ProcessPool(
                max_workers=self._workers,
                max_tasks=100,
                initializer=_limit_memory,
                initargs=(self._memory,),
                context=multiprocessing.get_context("spawn"),
            )
        return self._pool

    async def convert(self, data: bytes, file_type: str, fallback_id: str | None) -> ConversionResult:
        from concurrent.futures import TimeoutError as FutureTimeout

        from pebble import ProcessExpired

        future = self._get_pool().schedule(
            convert_in_worker, args=(data, file_type, fallback_id, self._max_unzipped), timeout=self._timeout
        )
        try:
            result: Any = await asyncio.wrap_future(future)
        except FutureTimeout as exc:
            raise ConversionTimeout from exc
        except ProcessExpired as exc:
            raise ConversionCrashed from exc
        assert isinstance(result, ConversionResult)
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]
            self._pool.join(timeout=5)
            self._pool = None
