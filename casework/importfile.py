"""Reading an import file (CSV or XLSX) into numbered rows of field values.

The first row is the header: each column is a field's name (``id_number``)
or its label as the workflow declares it (``公民身份号码``), so a clerk's
own spreadsheet can be imported as it is. Line numbers are the file's own
(the header is line 1; a CSV row whose quoted cell runs over several lines
has the number of the line it starts on), so an error can point at the row
to fix. Empty rows are skipped. Values stay text; the engine validates and
converts them (a control character in a cell is refused there, by field and
position). A CSV is parsed by the csv module as written; an .xlsx is read
row by row, however many rows its ``<dimension>`` claims, and refused if any
of its XML parts declares a DTD.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
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
    """The file's records as the csv module reads them, each with the line it starts on.

    The file is parsed as written (``newline=""``): only CR, LF and CRLF end a
    record, so U+2028 or 0x1C inside a cell stays in that cell (and the text
    policy then names it), and a quoted cell keeps its line breaks.
    """
    try:
        # decoded without newline translation: the csv module sees the line ends as written
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); save the file as CSV UTF-8") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"{path}, line {start}: {_csv_problem(exc)}") from None
        yield start, row
        start = reader.line_num + 1


def _csv_problem(exc: csv.Error) -> str:
    """What the csv module could not read, in words a clerk can act on."""
    if "field larger than field limit" in str(exc):
        return (
            f"a cell longer than {csv.field_size_limit():,} characters; no field takes that much "
            "(is a quote left open?)"
        )
    return f"not readable as CSV ({exc})"


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list[Any]]]:
    import zipfile
    from xml.etree.ElementTree import ParseError

    from openpyxl import load_workbook

    try:
        _refuse_dtd(path)
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, ParseError) as exc:
        raise InputError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        sheet = book.worksheets[0]
        # the sheet's <dimension ref> is what the writer claimed, not what the sheet holds: a stale one
        # would cut rows off silently, so the rows are counted as they are read
        sheet.reset_dimensions()
        try:
            for line, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield line, list(row)
        except (ParseError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    finally:
        book.close()


def _refuse_dtd(path: Path) -> None:
    """Refuse a workbook any of whose XML parts declares a DTD (no spreadsheet program writes one).

    A DTD is how entity bombs and external entities get in; the XML parser
    would stop some, but with a raw error. Only each part's prolog is read
    (a DTD can stand nowhere else), so even a large sheet costs next to nothing.
    """
    import zipfile
    from xml.parsers import expat

    class _Prolog(Exception):
        """The root element began: the prolog, where a DTD would be, is over."""

    def doctype(*_: Any) -> None:
        raise InputError(
            f"{path}: part {name} of the workbook declares a DTD (<!DOCTYPE …>), which no spreadsheet program "
            "writes; it is refused for safety: open the file in Excel or WPS and save it again as .xlsx"
        )

    def root(*_: Any) -> None:
        raise _Prolog

    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if not name.endswith((".xml", ".rels", ".vml")):
                continue
            parser = expat.ParserCreate()
            parser.StartDoctypeDeclHandler = doctype
            parser.StartElementHandler = root
            with archive.open(name) as part:
                try:
                    while chunk := part.read(64 * 1024):
                        parser.Parse(chunk, False)
                    parser.Parse(b"", True)
                except _Prolog:
                    continue
                except expat.ExpatError as exc:
                    raise InputError(f"{path}: part {name} of the workbook is not well-formed XML ({exc})") from None


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
