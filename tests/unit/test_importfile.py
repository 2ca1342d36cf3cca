"""Reading import files as they are written: real CSV files, real .xlsx workbooks made with openpyxl.

A CSV is parsed by the csv module over the file itself, so only CR, LF and
CRLF end a record: U+2028 or the separators 0x1C–0x1E inside a cell stay in
that cell, a quoted cell keeps its line breaks, and every row keeps the
number of the line it starts on. A cell too long for any field is one
located error. A workbook is read row by row however many rows its
``<dimension ref>`` claims, and one whose XML declares a DTD is refused with
one line, not a parser's traceback.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from casework.importfile import read_rows
from engine import InputError, WorkflowDef, load_definition_file
from tests.conftest import BUNDLED

HEADER = ["applicant_name", "county", "cause"]


@pytest.fixture(scope="module")
def wf() -> WorkflowDef:
    return load_definition_file(BUNDLED)


def rows_of(path: Path, wf: WorkflowDef) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    total, rows = read_rows(path, wf)
    return total, list(rows)


def write_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "archives.csv"
    path.write_bytes(text.encode("utf-8"))
    return path


# ------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    "inside",
    ["\u2028", "\u2029", "\x1c", "\x1d", "\x1e", "\x85", "\x0b", "\x0c"],
    ids=["U+2028", "U+2029", "0x1C", "0x1D", "0x1E", "NEL", "VT", "FF"],
)
def test_a_line_separator_inside_a_cell_stays_in_the_cell(tmp_path: Path, wf: WorkflowDef, inside: str) -> None:
    path = write_csv(tmp_path, f"applicant_name,county\n张三,芗城区\n王{inside}五,龙文区\n李四,芗城区\n")
    total, rows = rows_of(path, wf)
    assert total == 3
    assert rows == [
        (2, {"applicant_name": "张三", "county": "芗城区"}),
        (3, {"applicant_name": f"王{inside}五", "county": "龙文区"}),
        (4, {"applicant_name": "李四", "county": "芗城区"}),
    ]


def test_a_quoted_cell_keeps_its_line_breaks_and_later_rows_keep_their_line_numbers(
    tmp_path: Path, wf: WorkflowDef
) -> None:
    path = write_csv(
        tmp_path,
        "applicant_name,county,cause\r\n"
        '张三,芗城区,"因病致困\r\n住院三个月\r\n无力负担"\r\n'
        "\r\n"
        '李四,龙文区,"失业,""待业"""\r\n'
        "王五,芗城区,意外\r\n",
    )
    total, rows = rows_of(path, wf)
    assert total == 3
    assert rows == [
        (2, {"applicant_name": "张三", "county": "芗城区", "cause": "因病致困\r\n住院三个月\r\n无力负担"}),
        (6, {"applicant_name": "李四", "county": "龙文区", "cause": '失业,"待业"'}),
        (7, {"applicant_name": "王五", "county": "芗城区", "cause": "意外"}),
    ]


def test_a_utf8_bom_and_labels_as_headers_still_read(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_csv(tmp_path, "\ufeff申请人姓名,所属县区\n张三,芗城区\n")
    assert rows_of(path, wf) == (1, [(2, {"applicant_name": "张三", "county": "芗城区"})])


def test_a_cell_over_128_kib_is_one_located_error(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_csv(tmp_path, "applicant_name,cause\n张三,短\n李四," + "长" * (128 * 1024 + 1) + "\n")
    with pytest.raises(InputError) as info:
        read_rows(path, wf)
    assert str(info.value) == (
        f"{path}, line 3: a cell longer than 131,072 characters; no field takes that much (is a quote left open?)"
    )


def test_a_quote_left_open_is_one_located_error_too(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_csv(tmp_path, 'applicant_name,cause\n张三,"从这里开始\n' + ("后面都在引号里\n" * 20000))
    with pytest.raises(InputError, match=r", line 2: a cell longer than 131,072 characters"):
        read_rows(path, wf)


# ------------------------------------------------------------------------ XLSX


def write_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def rewrite_part(path: Path, part: str, change: Callable[[bytes], bytes]) -> None:
    """Edit one XML part inside the workbook's zip, as a hand (or a hostile tool) would."""
    with zipfile.ZipFile(path) as source:
        items = [(info, source.read(info.filename)) for info in source.infolist()]
    assert part in [info.filename for info, _ in items]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in items:
            target.writestr(info, change(data) if info.filename == part else data)


FIVE = [["张三", "芗城区"], ["李四", "龙文区"], ["王五", "芗城区"], ["赵六", "龙文区"], ["钱七", "芗城区"]]


def test_a_stale_dimension_does_not_cut_rows_off(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_xlsx(tmp_path / "stale.xlsx", [["applicant_name", "county"], *FIVE])

    def stale(xml: bytes) -> bytes:
        assert b'<dimension ref="A1:B6"/>' in xml
        return xml.replace(b'<dimension ref="A1:B6"/>', b'<dimension ref="A1:A2"/>')

    rewrite_part(path, "xl/worksheets/sheet1.xml", stale)
    total, rows = rows_of(path, wf)
    assert total == 5
    assert rows == [
        (line, {"applicant_name": name, "county": county}) for line, (name, county) in enumerate(FIVE, start=2)
    ]


def test_gaps_in_a_sheet_keep_the_line_numbers(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_xlsx(
        tmp_path / "gaps.xlsx", [["applicant_name", "county"], ["张三", "芗城区"], [], [], ["李四", "龙文区"]]
    )
    assert rows_of(path, wf) == (
        2,
        [(2, {"applicant_name": "张三", "county": "芗城区"}), (5, {"applicant_name": "李四", "county": "龙文区"})],
    )


def _entity_bomb() -> bytes:
    entities = [b'<!ENTITY e0 "0123456789">']
    entities += [b'<!ENTITY e%d "%s">' % (i, (b"&e%d;" % (i - 1)) * 10) for i in range(1, 9)]
    return b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE worksheet [' + b"".join(entities) + b"]>"


@pytest.mark.parametrize(
    ("kind", "prolog", "cell"),
    [
        ("entity bomb", _entity_bomb(), b"&e8;"),
        ("external entity", b'<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"&x;"),
        ("plain DTD", b"<!DOCTYPE worksheet>", b"\xe5\xbc\xa0\xe4\xb8\x89"),
    ],
    ids=["entity-bomb", "external-entity", "plain-dtd"],
)
def test_a_workbook_with_a_dtd_is_refused_in_one_line(
    tmp_path: Path, wf: WorkflowDef, kind: str, prolog: bytes, cell: bytes
) -> None:
    path = write_xlsx(tmp_path / "dtd.xlsx", [["applicant_name", "county"], ["张三", "芗城区"]])

    def with_dtd(xml: bytes) -> bytes:
        if xml.startswith(b"<?xml"):
            xml = xml[xml.index(b"?>") + 2 :]
        return prolog + xml.replace("张三".encode(), cell).replace(b"&#24352;&#19977;", cell)

    rewrite_part(path, "xl/worksheets/sheet1.xml", with_dtd)
    with pytest.raises(InputError) as info:
        read_rows(path, wf)
    assert str(info.value) == (
        f"{path}: part xl/worksheets/sheet1.xml of the workbook declares a DTD (<!DOCTYPE …>), which no "
        "spreadsheet program writes; it is refused for safety: open the file in Excel or WPS and save it again as .xlsx"
    )


def test_a_dtd_in_any_part_is_refused(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_xlsx(tmp_path / "dtd.xlsx", [["applicant_name"], ["张三"]])
    rewrite_part(path, "xl/workbook.xml", lambda xml: _entity_bomb() + xml.split(b"?>", 1)[-1])
    with pytest.raises(InputError, match=r"part xl/workbook.xml of the workbook declares a DTD"):
        read_rows(path, wf)


def test_broken_xml_in_a_workbook_is_one_line(tmp_path: Path, wf: WorkflowDef) -> None:
    path = write_xlsx(tmp_path / "broken.xlsx", [["applicant_name"], ["张三"]])
    rewrite_part(path, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"</sheetData>", b"</sheetDat>"))
    with pytest.raises(InputError, match=r"broken.xlsx: not a readable .xlsx workbook \(mismatched tag"):
        rows_of(path, wf)


def test_a_file_that_is_not_a_workbook_is_one_line(tmp_path: Path, wf: WorkflowDef) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(InputError, match=r"fake.xlsx: not a readable .xlsx workbook"):
        read_rows(path, wf)
