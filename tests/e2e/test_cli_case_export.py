"""``case list --format csv|xlsx -o FILE``: the listed cases exported, as an operator types it (issue 13, item 3).

An export holds, for each listed case, its reference, workflow, state (its
label), county and deadline, then every field — the very values ``case list
--json`` shows the same user, read back here with the csv module and with
openpyxl. Whatever a cell holds was typed by someone, so a text starting
with ``= + - @``, a tab or a CR is written as text (a leading apostrophe; in
XLSX a string cell, never a formula). Every export is in the access log. A
refused export (xlsx to the terminal, a missing folder, an unknown name)
leaves no file, and a failed one leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import openpyxl
import pytest
from sqlalchemy import update

from casework.export import Column, Sheet, write_sheet
from db import make_engine
from db.schema import cases as cases_table
from engine import load_definition_file
from tests.e2e.conftest import BUNDLED, ROOT, Seeded
from tests.e2e.test_cli import ID_1, ID_2, ID_3, casework, full_household, ok, ok_json, refused, usage_error

MEDICAL = ROOT / "workflows" / "medical_aid.yaml"
HOSTILE = ['=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)"]
HEAD = ["编号", "业务", "状态", "县区", "办理期限"]


class Scene(NamedTuple):
    url: str
    hostile: list[str]  # 芗城区, one per HOSTILE value in 致困原因
    longwen: str  # 龙文区, in 审核 (a deadline)
    tab: str  # 芗城区, its cause set to "\t=1" behind the engine's back (the engine strips what is typed)
    medical: str  # 芗城区, subsidy 1234.57


@pytest.fixture
def scene(seeded: Seeded) -> Iterator[Scene]:
    svc = seeded.svc
    svc.load_workflow(load_definition_file(MEDICAL))
    hostile = []
    for n, value in enumerate(HOSTILE):
        data = full_household(id_number=None, cause=value, phone=f"1380000000{n}")
        if n == 3:
            data["applicant_name"] = "@张三"
        hostile.append(svc.create_case("poverty_archive", "lin", data).ref)
    longwen = svc.create_case(
        "poverty_archive",
        "chen",
        full_household(applicant_name="欧阳志华", id_number=ID_3, county="龙文区", household_type="低保边缘户"),
    ).ref
    svc.fire(longwen, "submit", "chen")
    tab = svc.create_case("poverty_archive", "lin", full_household(id_number=ID_1)).ref
    engine = make_engine(seeded.url)
    try:
        with engine.begin() as conn:
            data = {**full_household(id_number=ID_1), "cause": "\t=1", "applicant_name": "\r=2+3"}
            conn.execute(update(cases_table).where(cases_table.c.ref == tab).values(data=data))
    finally:
        engine.dispose()
    medical = svc.create_case(
        "medical_aid",
        "lin",
        {"applicant_name": "林小华", "id_number": ID_2, "county": "芗城区", "self_paid": "12345.65"},
    ).ref
    yield Scene(seeded.url, hostile, longwen, tab, medical)


def listed(url: str, *args: str) -> list[dict[str, Any]]:
    """``case list ARGS --json``: what the export must hold."""
    cases: list[dict[str, Any]] = ok_json(casework(url, "case", "list", *args, "--json"))
    return cases


def as_csv(value: Any) -> str:
    """A JSON value as the CSV cell must show it."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = "、".join(map(str, value))
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def read_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM: Excel on a Chinese Windows reads it as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def export_rows(header: list[str], rows: list[list[Any]]) -> dict[str, dict[str, Any]]:
    """Rows by reference, each cell by its heading."""
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def labels(url: str) -> dict[str, str]:
    """Each field's heading (its label) by field name, over both workflows."""
    out: dict[str, str] = {}
    for path in (BUNDLED, MEDICAL):
        for f in load_definition_file(path).fields.values():
            out.setdefault(f.name, f.label)
    return out


# ------------------------------------------------------------------------------------------------- CSV


def test_csv_export_holds_what_json_shows_that_user(scene: Scene, tmp_path: Path) -> None:
    url = scene.url
    for who in ([], ["--as", "lin"], ["--as", "chen"]):
        target = tmp_path / f"cases{'-'.join(who)}.csv"
        out = ok(casework(url, "case", "list", *who, "--format", "csv", "-o", str(target)))
        expected = listed(url, *who)
        assert out == f"wrote {target} ({len(expected)} case{'s' if len(expected) != 1 else ''})\n"
        header, *rows = read_csv(target)
        assert header[:5] == HEAD
        got = export_rows(header, rows)
        assert list(got) == [c["ref"] for c in expected]  # the same cases, in the same order
        names = labels(url)
        for case in expected:
            row = got[case["ref"]]
            assert row["业务"] == case["workflow"] and row["状态"] == case["state_label"]
            assert row["县区"] == case["scope"] and row["办理期限"] == as_csv(case["deadline"])
            for field, value in case["data"].items():
                if field != "county":  # the county has its own column
                    assert row[names[field]] == as_csv(value), (case["ref"], field)
    lin_refs = [r[0] for r in read_csv(tmp_path / "cases--as-lin.csv")[1:]]
    assert scene.longwen not in lin_refs and scene.medical in lin_refs  # lin covers 芗城区 only


def test_csv_writes_formula_like_text_as_text(scene: Scene, tmp_path: Path) -> None:
    target = tmp_path / "cases.csv"
    ok(casework(scene.url, "case", "list", "--workflow", "poverty_archive", "--format", "csv", "-o", str(target)))
    header, *rows = read_csv(target)
    got = export_rows(header, rows)
    causes = [got[ref]["致困原因"] for ref in scene.hostile]
    assert causes == ['\'=HYPERLINK("http://x","y")', "'+1", "'-2", "'@SUM(A1)"]
    assert got[scene.hostile[3]]["申请人姓名"] == "'@张三"
    assert got[scene.tab]["致困原因"] == "'\t=1" and got[scene.tab]["申请人姓名"] == "'\r=2+3"
    # a number is a number, whatever its sign: the household size stays 3
    assert got[scene.hostile[0]]["家庭人口"] == "3"


def test_csv_to_the_terminal_and_its_filters(scene: Scene) -> None:
    url = scene.url
    out = ok(casework(url, "case", "list", "--format", "csv", "--county", "龙文区"))
    header, *rows = list(csv.reader(io.StringIO(out, newline="")))
    assert header[:5] == HEAD and [r[0] for r in rows] == [scene.longwen]
    assert rows[0][1:4] == ["poverty_archive", "审核", "龙文区"] and rows[0][4]  # with its deadline
    searched = ok(casework(url, "case", "list", "--format", "csv", "--search", "林小华"))
    assert [r[0] for r in list(csv.reader(io.StringIO(searched)))[1:]] == [scene.medical]
    # a clerk of 芗城区 exporting a search for a 龙文区 name: the heading only, as for a name nobody has
    theirs = casework(url, "case", "list", "--as", "lin", "--format", "csv", "--search", "欧阳志华")
    nobody = casework(url, "case", "list", "--as", "lin", "--format", "csv", "--search", "欧阳无名")
    assert ok(theirs) == ok(nobody) and len(list(csv.reader(io.StringIO(theirs.out)))) == 1
    typed = ok(casework(url, "case", "list", "--format", "csv", "--household-type", "低保边缘户"))
    assert [r[0] for r in list(csv.reader(io.StringIO(typed)))[1:]] == [scene.longwen]


# ------------------------------------------------------------------------------------------------ XLSX


def test_xlsx_export_holds_what_json_shows_and_no_formula(scene: Scene, tmp_path: Path) -> None:
    url = scene.url
    target = tmp_path / "cases.xlsx"
    ok(casework(url, "case", "list", "--as", "lin", "--format", "xlsx", "-o", str(target)))
    ws = openpyxl.load_workbook(target).active
    assert ws is not None
    cells = list(ws.iter_rows())
    assert all(c.data_type != "f" for row in cells for c in row)  # not one formula in the file
    header = [c.value for c in cells[0]]
    assert header[:5] == HEAD and ws.freeze_panes == "A2"
    got = {row[0].value: {h: c for h, c in zip(header, row, strict=True)} for row in cells[1:]}
    expected = listed(url, "--as", "lin")
    assert list(got) == [c["ref"] for c in expected]
    names = labels(url)
    for case in expected:
        row = got[case["ref"]]
        assert row["状态"].value == case["state_label"] and row["县区"].value == case["scope"]
        for field, value in case["data"].items():
            if field == "county" or value is None:
                continue
            cell = row[names[field]]
            if isinstance(value, (int, float)):
                assert cell.value == value and cell.data_type == "n"
            elif field in ("income_per_capita", "self_paid", "subsidy"):  # decimal fields: numbers
                assert Decimal(str(cell.value)) == Decimal(value) and cell.data_type == "n", field
            else:
                assert cell.value == as_csv(value) and cell.data_type == "s", (case["ref"], field)
    subsidy = got[scene.medical][names["subsidy"]]
    assert subsidy.value == pytest.approx(1234.57) and subsidy.number_format == "#,##0.00"
    for ref, value in zip(scene.hostile, HOSTILE, strict=True):
        cell = got[ref]["致困原因"]
        assert cell.data_type == "s" and cell.value == "'" + value
    assert got[scene.tab]["致困原因"].value == "'\t=1" and got[scene.tab]["致困原因"].data_type == "s"
    assert got[scene.tab]["申请人姓名"].data_type == "s"


# ------------------------------------------------------------------------------------------ access log


def test_every_export_is_in_the_access_log(scene: Scene, tmp_path: Path) -> None:
    url = scene.url
    target = tmp_path / "lin.xlsx"
    ok(casework(url, "case", "list", "--as", "lin", "--county", "芗城区", "--format", "xlsx", "-o", str(target)))
    ok(casework(url, "case", "list", "--format", "csv", "--search", "欧阳"))
    first, second = ok_json(casework(url, "audit", "access", "--action", "export_cases", "--json"))
    lin_refs = [c["ref"] for c in listed(url, "--as", "lin")]
    assert first["actor"] == "lin" and first["detail"] == {
        "filters": {"county": ["芗城区"]},
        "format": "xlsx",
        "file": str(target.resolve()),
        "refs": lin_refs,
    }
    assert second["actor"] is None
    assert second["detail"] == {"filters": {"search": "欧阳"}, "format": "csv", "refs": [scene.longwen]}


def test_json_to_a_file_is_what_json_prints_and_logged_as_a_list(scene: Scene, tmp_path: Path) -> None:
    target = tmp_path / "cases.json"
    out = ok(casework(scene.url, "case", "list", "--as", "lin", "--format", "json", "-o", str(target)))
    printed = ok(casework(scene.url, "case", "list", "--as", "lin", "--json"))
    assert out == f"wrote {target} (6 cases)\n" and target.read_text(encoding="utf-8") == printed
    logged = ok_json(casework(scene.url, "audit", "access", "--action", "list_cases", "--json"))
    assert [e["detail"]["refs"] for e in logged] == [[c["ref"] for c in json.loads(printed)]] * 2


# --------------------------------------------------------------------------------------------- refusals


def test_refused_exports_leave_no_file_and_log_nothing(scene: Scene, tmp_path: Path) -> None:
    url = scene.url
    tmp_path = tmp_path / "out"  # beside the SQLite file: a folder of its own
    tmp_path.mkdir()
    kept = tmp_path / "kept.csv"
    kept.write_text("before", encoding="utf-8")
    attempts = [
        (["--format", "xlsx"], 2, "give -o FILE.xlsx"),
        (["--format", "xlsx", "-o", str(tmp_path / "missing" / "x.xlsx")], 2, "does not exist"),
        (["--format", "csv", "-o", str(tmp_path / "missing" / "x.csv")], 2, "does not exist"),
        (["--format", "csv", "-o", str(tmp_path)], 2, "is a directory"),
        (["-o", str(tmp_path / "t.txt")], 2, "a table is for the screen"),
        (["--format", "csv", "--workflow", "medical", "-o", str(kept)], 1, "did you mean 'medical_aid'?"),
        (["--format", "xlsx", "--county", "芗城", "-o", str(kept)], 2, "did you mean '芗城区'?"),
        (["--format", "xlsx", "--as", "lin", "--county", "龙文区", "-o", str(kept)], 1, "not 龙文区"),
        (["--format", "csv", "--as", "nobody", "-o", str(kept)], 1, "no user 'nobody'"),
    ]
    for args, rc, needle in attempts:
        r = casework(url, "case", "list", *args, cwd=tmp_path)
        refused(r, needle, rc=rc)
    usage_error(casework(url, "case", "list", "--format", "pdf", "-o", str(kept)), "'pdf' is not one of")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv"]  # not even a temporary file
    assert kept.read_text(encoding="utf-8") == "before"
    assert ok_json(casework(url, "audit", "access", "--action", "export_cases", "--json")) == []


def test_an_export_replaces_a_file_whole(scene: Scene, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "cases.csv"
    target.write_text("old,content\n" * 1000, encoding="utf-8")
    ok(casework(scene.url, "case", "list", "--county", "龙文区", "--format", "csv", "-o", str(target)))
    assert [r[0] for r in read_csv(target)] == ["编号", scene.longwen]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv"]


# ------------------------------------------------------------------------------ the writer, failing midway


SHEET = Sheet("cases", (Column("ref", "编号"), Column("text", "内容"), Column("n", "数", "decimal")), ())


def _rows(count: int, fail_at: int | None = None) -> Iterator[dict[str, Any]]:
    for i in range(count):
        if i == fail_at:
            raise RuntimeError("the database went away")
        yield {"ref": f"ZZ-2026-{i:06d}", "text": "=1+1" if i % 2 else "王秀英", "n": Decimal(i) / 100}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_write_failing_midway_leaves_nothing_half_written(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"cases.{fmt}"
    with pytest.raises(RuntimeError, match="went away"):
        write_sheet(SHEET, fmt, target, rows=_rows(5000, fail_at=4000))
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"the old file")

    def refuse() -> None:
        raise RuntimeError("the access log could not be written")

    with pytest.raises(RuntimeError, match="access log"):
        write_sheet(SHEET, fmt, target, rows=_rows(10), before_publish=refuse)
    assert target.read_bytes() == b"the old file" and list(tmp_path.iterdir()) == [target]
    logged: list[int] = []
    write_sheet(SHEET, fmt, target, rows=_rows(10), before_publish=lambda: logged.append(1))
    assert logged == [1] and target.read_bytes() != b"the old file"


@pytest.mark.parametrize(("fmt", "count", "limit_mb"), [("csv", 100_000, 2), ("xlsx", 20_000, 2)])
def test_rows_are_streamed_not_held(tmp_path: Path, fmt: str, count: int, limit_mb: int) -> None:
    """Held, the rows alone take ~35 MB at 10⁵; streamed, the peak stays under 1 MB whatever the count."""
    write_sheet(SHEET, fmt, tmp_path / f"warm.{fmt}", rows=_rows(10))  # the writer's modules: imported once
    tracemalloc.start()
    try:
        write_sheet(SHEET, fmt, tmp_path / f"big.{fmt}", rows=_rows(count))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit_mb * 2**20, f"peak {peak / 2**20:.1f} MB"
    if fmt == "xlsx":
        book = openpyxl.load_workbook(tmp_path / "big.xlsx", read_only=True)
        try:
            ws = book.active
            assert ws is not None
            rows = ws.iter_rows()
            assert [c.value for c in next(rows)] == ["编号", "内容", "数"]
            next(rows)
            second = next(rows)
            assert second[1].value == "'=1+1" and second[1].data_type == "s"
            assert 3 + sum(1 for _ in rows) == count + 1
        finally:
            book.close()
