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
* Rows may be streamed (``write_sheet(..., rows=iterator)``): CSV and XLSX
  (openpyxl's write-only mode) hold one row at a time, so a list of 10⁵
  cases is written in bounded memory.

Masking is not done here: the rows a caller hands in are already what the
actor may see (:meth:`engine.Casework.list_cases` masks by the actor's
rights), so every format shows the same values.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine.sheets import Column, Sheet

__all__ = [
    "FILE_FORMATS",
    "FORMATS",
    "Column",
    "Sheet",
    "neutralise",
    "replace_into",
    "sheet_json",
    "write_csv",
    "write_sheet",
]

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


def write_csv(sheet: Sheet, stream: io.TextIOBase | Any, rows: Iterable[Mapping[str, Any]] | None = None) -> None:
    """Write ``sheet`` as CSV (heading row, then rows — ``rows`` if given, else the sheet's) to a text stream."""
    writer = csv.writer(stream, lineterminator="\r\n")
    writer.writerow([neutralise(c.title) for c in sheet.columns])
    for row in sheet.rows if rows is None else rows:
        writer.writerow([_cell(row.get(c.key)) for c in sheet.columns])


def _xlsx_text(text: str) -> str:
    """``text`` as an XLSX cell may hold it: a control character XML cannot carry is shown as ``\\xNN``."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return str(ILLEGAL_CHARACTERS_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text))


def _write_xlsx(sheet: Sheet, rows: Iterable[Mapping[str, Any]], path: Path) -> None:
    """Write the sheet as XLSX in openpyxl's write-only mode: one row in memory at a time, whatever the length."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    # a sheet title is at most 31 characters and may not hold []:*?/\
    ws = book.create_sheet("".join(ch for ch in sheet.title if ch not in "[]:*?/\\")[:31] or "Sheet1")
    ws.freeze_panes = "A2"

    def text(value: str, font: Font | None = None) -> WriteOnlyCell:
        # set the text, then force the string type: openpyxl reads "=…" as a formula otherwise
        cell = WriteOnlyCell(ws, value=_xlsx_text(value))
        cell.data_type = TYPE_STRING
        if font is not None:
            cell.font = font
        return cell

    try:
        bold = Font(bold=True)
        ws.append([text(neutralise(col.title), bold) for col in sheet.columns])
        formats = {"decimal": "#,##0.00", "percent": "0.0%"}
        for row in rows:
            line: list[Any] = []
            for col in sheet.columns:
                value = _cell(row.get(col.key))
                if isinstance(value, (int, float, Decimal)):
                    if col.kind in formats:
                        cell = WriteOnlyCell(ws, value=value)
                        cell.number_format = formats[col.kind]
                        line.append(cell)
                    else:
                        line.append(value)
                elif not value:
                    line.append(None)
                else:
                    value = _xlsx_text(value)
                    # neutralised text never starts with "=", so openpyxl types it a string by itself (a cell
                    # object per text would double the time); anything else is forced to a string all the same
                    line.append(text(value) if value.startswith("=") else value)
            ws.append(line)
        if sheet.notes:
            ws.append([])
            for note in sheet.notes:
                ws.append([text(neutralise(note))])
    except BaseException:
        _abandon(ws)
        raise
    book.save(path)


def _abandon(ws: Any) -> None:
    """Close a write-only sheet left midway and remove its temporary file (collected open, openpyxl complains)."""
    with contextlib.suppress(Exception):
        ws.close()
    writer = getattr(ws, "_writer", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.cleanup()


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


def replace_into(
    path: Path,
    write: Callable[[Any], None],
    *,
    binary: bool,
    encoding: str = "utf-8",
    before_publish: Callable[[], None] | None = None,
) -> None:
    """Write through ``write(target)`` into a temporary file beside ``path``, then rename it over ``path``.

    ``target`` is the temporary file's path (``binary``) or a text stream on
    it. ``before_publish`` runs once the file is whole and before it takes
    ``path``'s place (an export logs its access there): if it or ``write``
    fails, the temporary file is removed and ``path`` is as it was.
    """
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
        if before_publish is not None:
            before_publish()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sheet(
    sheet: Sheet,
    fmt: str,
    path: Path | None,
    *,
    rows: Iterable[Mapping[str, Any]] | None = None,
    before_publish: Callable[[], None] | None = None,
) -> str | None:
    """Write ``sheet`` as ``fmt`` (csv, xlsx or json) to ``path``; with no path, return the text (csv, json).

    ``rows``: the rows to write instead of ``sheet.rows``, iterated once and
    never held (CSV and XLSX): a case list streamed from the database.
    ``before_publish``: called once every row is written, before the file
    replaces ``path`` or the text is returned (see :func:`replace_into`).

    Raises ValueError for xlsx without a path (a binary file is not written to a terminal).
    """
    ready = before_publish or (lambda: None)
    if fmt == "xlsx":
        if path is None:
            raise ValueError("xlsx is a binary file: give -o FILE.xlsx")
        body = sheet.rows if rows is None else rows
        replace_into(path, lambda target: _write_xlsx(sheet, body, target), binary=True, before_publish=ready)
        return None
    if fmt == "csv":
        if path is None:
            buffer = io.StringIO()
            write_csv(sheet, buffer, rows)
            ready()
            return buffer.getvalue()
        replace_into(
            path,
            lambda stream: write_csv(sheet, stream, rows),
            binary=False,
            encoding="utf-8-sig",
            before_publish=ready,
        )
        return None
    if fmt == "json":
        if rows is not None:
            sheet = Sheet(sheet.title, sheet.columns, list(rows), sheet.notes, sheet.meta)
        text = json.dumps(sheet_json(sheet), ensure_ascii=False, indent=2) + "\n"
        if path is None:
            ready()
            return text
        replace_into(path, lambda stream: stream.write(text), binary=False, before_publish=ready)
        return None
    raise ValueError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}")
