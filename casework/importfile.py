"""Reading an import file (CSV or XLSX) into numbered rows of field values.

The first row is the header: each column is a field's name (``id_number``)
or its label as the workflow declares it (``公民身份号码``), so a clerk's
own spreadsheet can be imported as it is. Line numbers are the file's own
(the header is line 1), so an error can point at the row to fix. Empty rows
are skipped. Values stay text; the engine validates and converts them.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine import InputError, WorkflowDef
from engine.suggest import did_you_mean

__all__ = ["MAX_IMPORT_BYTES", "read_rows"]

MAX_IMPORT_BYTES = 200 * 1024 * 1024  # a province's archives as CSV is well under this


def read_rows(path: Path, wf: WorkflowDef) -> tuple[int, Iterator[tuple[int, dict[str, Any]]]]:
    """(number of data rows, the rows as ``(line, {field: value})``) of ``path`` for ``wf``.

    Raises :class:`InputError` for a file that cannot be read, is too big,
    has an unknown or repeated column, or no header.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_IMPORT_BYTES:
        raise InputError(f"{path}: {size:,} bytes is more than the {MAX_IMPORT_BYTES:,} an import may have; split it")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        raw = _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        raw = _xlsx_rows(path)
    else:
        raise InputError(
            f"{path}: import reads .csv (UTF-8) or .xlsx files, not {suffix or 'a file without extension'}"
        )
    try:
        _line, header = next(raw)
    except StopIteration:
        raise InputError(f"{path}: the file is empty; the first row must name the fields") from None
    columns = _columns(path, header, wf)
    rows = [(line, values) for line, values in raw if any(_text(v) for v in values)]

    def items() -> Iterator[tuple[int, dict[str, Any]]]:
        for line, values in rows:
            data = {}
            for index, name in columns.items():
                value = _text(values[index]) if index < len(values) else ""
                if value != "":
                    data[name] = value
            yield line, data

    return len(rows), items()


def _columns(path: Path, header: list[Any], wf: WorkflowDef) -> dict[int, str]:
    by_label = {f.label: name for name, f in wf.fields.items() if f.label}
    columns: dict[int, str] = {}
    problems = []
    for index, cell in enumerate(header):
        title = _text(cell)
        if title == "":
            continue
        name = title if title in wf.fields else by_label.get(title)
        if name is None:
            problems.append(f"column {index + 1} {title!r} is not a field of {wf.name}{did_you_mean(title, wf.fields)}")
        elif name in columns.values():
            problems.append(f"column {index + 1} {title!r} repeats field {name}")
        else:
            columns[index] = name
    if problems:
        names = ", ".join(wf.fields)
        raise InputError(f"{path}, line 1: " + "; ".join(problems) + f" (fields are: {names}; labels work too)")
    if not columns:
        raise InputError(f"{path}, line 1: no column names a field of {wf.name}")
    return columns


def _csv_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as CSV UTF-8") from None
    reader = csv.reader(text.splitlines())
    for row in reader:
        yield reader.line_num, row


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        for line, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield line, list(row)
    finally:
        book.close()


def _text(value: Any) -> str:
    """A cell as text: numbers without a spurious ``.0``, dates as ISO, everything stripped."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()
