"""Rows written out for people and spreadsheets: CSV, XLSX and JSON, safe to open in Excel.

Reports (``casework report``) and case lists (``case list --format``) hand a
:class:`Sheet` to :func:`write_sheet`. Whatever a cell holds came from case
data someone typed, so it is written as *data*, never as something a
spreadsheet would run:

* **Formula injection** (CSV injection): a text cell that starts with
  ``=``, ``+``, ``-``, ``@``, a tab or a carriage return would be read by
  Excel or LibreOffice as a formula (``=HYPERLINK(...)``, ``=cmd|...``). In
  CSV it is written with a leading apostrophe (``'=1+1``), which the
  spreadsheet shows as the text ``=1+1`` — the OWASP recommendation. In
  XLSX it is stored as a string cell, which is never evaluated (openpyxl
  would otherwise store a text starting with ``=`` as a formula), and given
  the same apostrophe so that copying it into another sheet stays safe.
  Numbers (``int``, ``Decimal``) are numbers, whatever their sign.
* CSV is UTF-8 with a byte-order mark, so Excel on a Chinese Windows opens
  it as UTF-8 rather than GBK; the :mod:`csv` module does the quoting.
* A file is written next to its destination and renamed over it, so a
  failed export leaves no half-written file behind.

Masking is not done here: the rows a caller hands in are already what the
actor may see (:meth:`engine.Casework.list_cases` masks by the actor's
rights), so every format shows the same values.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.sheets import Column, Sheet

__all__ = ["FILE_FORMATS", "FORMATS", "Column", "Sheet", "neutralise", "sheet_json", "write_csv", "write_sheet"]

#: every ``--format`` a tabular command accepts
FORMATS = ("table", "json", "csv", "xlsx")
#: the formats that are files (xlsx only to a file: it is binary)
FILE_FORMATS = ("csv", "xlsx")

#: what a spreadsheet reads as the start of a formula (or, tab and CR, as a cell break before one)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it as text: an apostrophe before a formula-like start."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _cell(value: Any) -> Any:
    """A value as a CSV/XLSX cell: numbers stay numbers, everything else is neutralised text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, Decimal)):
        return value
    if isinstance(value, float):
        # a rate or share: shown as computed; amounts are Decimal and never come here
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return neutralise("、".join(str(v) for v in value))
    return neutralise(str(value))


def write_csv(sheet: Sheet, stream: io.TextIOBase | Any) -> None:
    """Write ``sheet`` as CSV (heading row, then rows) to a text stream."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow([neutralise(c.title) for c in sheet.columns])
    for row in sheet.rows:
        writer.writerow([_cell(row.get(c.key)) for c in sheet.columns])


def _write_xlsx(sheet: Sheet, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    book = Workbook(write_only=False)
    ws = book.active
    assert ws is not None
    # a sheet title is at most 31 characters and may not hold []:*?/\
    ws.title = "".join(ch for ch in sheet.title if ch not in "[]:*?/\\")[:31] or "Sheet1"
    bold = Font(bold=True)
    for j, col in enumerate(sheet.columns, start=1):
        cell = ws.cell(row=1, column=j, value=col.title)
        cell.data_type = TYPE_STRING
        cell.font = bold
    for i, row in enumerate(sheet.rows, start=2):
        for j, col in enumerate(sheet.columns, start=1):
            value = _cell(row.get(col.key))
            cell = ws.cell(row=i, column=j)
            if isinstance(value, (int, float, Decimal)):
                cell.value = value
                if col.kind == "decimal":
                    cell.number_format = "#,##0.00"
                elif col.kind == "percent":
                    cell.number_format = "0.0%"
            else:
                # set the text, then force the string type: openpyxl reads "=…" as a formula otherwise
                cell.value = value
                cell.data_type = TYPE_STRING
    for k, note in enumerate(sheet.notes, start=len(sheet.rows) + 3):
        cell = ws.cell(row=k, column=1, value=neutralise(note))
        cell.data_type = TYPE_STRING
    ws.freeze_panes = "A2"
    book.save(path)


def sheet_json(sheet: Sheet) -> dict[str, Any]:
    """The sheet as JSON-ready data: title, meta, columns, rows (decimals as exact text), notes."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return value

    return {
        "title": sheet.title,
        **{k: plain(v) for k, v in sheet.meta.items()},
        "columns": [{"key": c.key, "title": c.title, "kind": c.kind} for c in sheet.columns],
        "rows": [{c.key: plain(row.get(c.key)) for c in sheet.columns} for row in sheet.rows],
        "notes": list(sheet.notes),
    }


def _replace_into(path: Path, write: Any, *, binary: bool, encoding: str = "utf-8") -> None:
    """Write through ``write(target)`` into a temporary file beside ``path``, then rename it over ``path``."""
    path = path.expanduser()
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    try:
        if binary:
            os.close(fd)
            write(Path(tmp))
        else:
            with os.fdopen(fd, "w", encoding=encoding, newline="") as stream:
                write(stream)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sheet(sheet: Sheet, fmt: str, path: Path | None) -> str | None:
    """Write ``sheet`` as ``fmt`` (csv, xlsx or json) to ``path``; with no path, return the text (csv, json).

    Raises ValueError for xlsx without a path (a binary file is not written to a terminal).
    """
    if fmt == "xlsx":
        if path is None:
            raise ValueError("xlsx is a binary file: give -o FILE.xlsx")
        _replace_into(path, lambda target: _write_xlsx(sheet, target), binary=True)
        return None
    if fmt == "csv":
        if path is None:
            buffer = io.StringIO()
            write_csv(sheet, buffer)
            return buffer.getvalue()
        _replace_into(path, lambda stream: write_csv(sheet, stream), binary=False, encoding="utf-8-sig")
        return None
    if fmt == "json":
        text = json.dumps(sheet_json(sheet), ensure_ascii=False, indent=2) + "\n"
        if path is None:
            return text
        _replace_into(path, lambda stream: stream.write(text), binary=False)
        return None
    raise ValueError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
