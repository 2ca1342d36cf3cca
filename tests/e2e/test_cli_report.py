"""``casework report NAME``: every format written and read back, every refusal with its exit code and no file.

The office is the one of ``tests/integration/test_reports.py`` (its story ends
in April 2026; the command counts as of the real now, so only figures that
do not move with time are checked here: the integration tests check every
definition at its boundary).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook

from tests.e2e.runner import casework
from tests.integration.test_reports import build_office


@pytest.fixture(scope="module")
def office_url(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One office on SQLite for the whole module: reports only read it."""
    path = tmp_path_factory.mktemp("office") / "office.db"
    shutil.copy(sqlite_template, path)
    office = build_office(f"sqlite:///{path}")
    office.engine.dispose()
    yield f"sqlite:///{path}"


def test_table_shows_the_report_and_its_definitions(office_url: str) -> None:
    r = casework(office_url, "report", "exit-rate", "--year", "2026")
    assert r.rc == 0, r.err
    assert "困难职工建档立卡：2026 年解困脱困率" in r.out
    assert "33.33%" in r.out and "50%" in r.out and "—" in r.out  # total, 芗城区, 漳浦县 (no denominator)
    assert "注：分母：2026-01-01 00:00（Asia/Shanghai）时状态为“已建档”的档案户数" in r.out
    assert "目标不低于 30%" in r.out


@pytest.mark.parametrize(
    "args",
    [
        ("archives",),
        ("archives", "--as-of", "2025-12-31"),
        ("archives", "--as-of", "2026-01-01T00:00:00+08:00"),
        ("programmes",),
        ("programmes", "--year", "2026"),
        ("petitions", "--county", "芗城区"),
        ("overdue",),
    ],
)
def test_every_report_prints_a_table_and_exits_0(office_url: str, args: tuple[str, ...]) -> None:
    r = casework(office_url, "report", *args)
    assert r.rc == 0, r.err
    assert "合计" in r.out and "注：" in r.out and r.err == ""


def test_json_to_the_screen_and_to_a_file_are_the_same(office_url: str, tmp_path: Path) -> None:
    shown = casework(office_url, "report", "exit-rate", "--year", "2026", "--format", "json")
    assert shown.rc == 0, shown.err
    data = json.loads(shown.out)
    assert (data["report"], data["year"], data["target"]) == ("exit-rate", 2026, "0.30")
    total = data["rows"][-1]
    assert total == {
        "county": "合计",
        "on_file": 3,
        "exited": 1,
        "rate": "0.3333",
        "target": "0.30",
        "met": "是",
        "new": 3,
        "new_exited": 1,
    }
    target = tmp_path / "exit.json"
    written = casework(office_url, "report", "exit-rate", "--year", "2026", "--format", "json", "-o", str(target))
    assert written.rc == 0 and f"wrote {target}" in written.out
    assert json.loads(target.read_text(encoding="utf-8")) == data


def test_csv_read_back_with_the_csv_module(office_url: str, tmp_path: Path) -> None:
    target = tmp_path / "programmes.csv"
    r = casework(office_url, "report", "programmes", "--format", "csv", "-o", str(target))
    assert r.rc == 0, r.err
    with target.open(encoding="utf-8-sig", newline="") as f:  # Excel's UTF-8: with a byte-order mark
        rows = list(csv.reader(f))
    assert rows[0] == ["项目", "年度", "县区", "申请件数", "获助件数", "获助人数", "核定金额（元）", "已发放金额（元）"]
    by_key = {(row[0], row[1], row[2]): row for row in rows[1:]}
    assert by_key[("送温暖", "2026", "芗城区")][3:] == ["4", "3", "8", "1.21", "0.20"]
    assert by_key[("送温暖", "2025", "芗城区")][6:] == ["0.10", "0.10"]
    printed = casework(office_url, "report", "programmes", "--format", "csv")
    assert printed.rc == 0
    assert list(csv.reader(printed.out.splitlines())) == rows


def test_xlsx_read_back_with_openpyxl(office_url: str, tmp_path: Path) -> None:
    target = tmp_path / "exit.xlsx"
    r = casework(office_url, "report", "exit-rate", "--year", "2026", "--format", "xlsx", "-o", str(target))
    assert r.rc == 0, r.err
    assert f"wrote {target} (exit-rate: 4 rows)" in r.out
    sheet = load_workbook(target).active
    assert sheet is not None
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:4] == ["县区", "年初已建档户数", "其中年内解困脱困", "解困脱困率"]
    lines = {row[0]: row for row in values[1:5]}
    assert lines["芗城区"][1:4] == [2, 1, 0.5]  # numbers, not text
    assert lines["漳浦县"][3] == "—" and lines["漳浦县"][5] == "—"
    assert lines["合计"][1] == 3 and abs(lines["合计"][3] - 0.3333) < 1e-9
    first = next(i for i, row in enumerate(values, start=1) if row[0] == "芗城区")
    assert sheet.cell(row=first, column=4).number_format == "0.0%"
    assert [row[0] for row in values[1:5]] == ["芗城区", "龙文区", "漳浦县", "合计"]  # the declared order
    notes = [row[0] for row in values[5:] if row[0]]
    assert any(str(n).startswith("分母：") for n in notes)


def test_as_user_counts_only_their_counties(office_url: str) -> None:
    r = casework(office_url, "report", "petitions", "--as", "chen", "--format", "json")
    assert r.rc == 0, r.err
    data = json.loads(r.out)
    assert [row["county"] for row in data["rows"]] == ["芗城区", "合计"]
    assert data["as_user"] == "chen"


@pytest.mark.parametrize(
    ("args", "rc", "message"),
    [
        (
            ("exit_rate", "--year", "2026", "--format", "csv"),
            2,
            "there is no report 'exit_rate'; did you mean 'exit-rate'?",
        ),
        (("archive", "--format", "json"), 2, "did you mean 'archives'?"),
        (("exit-rate", "--year", "26", "--format", "csv"), 2, "year 26 is not one a report covers"),
        (("exit-rate", "--year", "12026", "--format", "csv"), 2, "did you mean 2026?"),
        (("exit-rate", "--format", "csv"), 2, "the exit-rate report needs --year YYYY"),
        (("petitions", "--as-of", "2026-01-01", "--format", "csv"), 2, "--as-of applies to the archives report only"),
        (("overdue", "--year", "2026", "--format", "csv"), 2, "the overdue report has no year"),
        (("archives", "--as-of", "2026-02-30", "--format", "csv"), 2, "--as-of '2026-02-30' is not a date"),
        (("archives", "--as-of", "2026-01-01T00:00", "--format", "csv"), 2, "a time with its offset"),
        (("archives", "--as-of", "2999-01-01", "--format", "csv"), 2, "is after today"),
        (
            ("archives", "--county", "芗城", "--format", "csv"),
            2,
            "no loaded workflow has the county '芗城'; did you mean",
        ),
        (("petitions", "--as", "chen", "--county", "龙文区", "--format", "csv"), 1, "chen covers 芗城区, not 龙文区"),
        (("petitions", "--as", "nobody", "--format", "csv"), 1, "nobody"),
        (("archives", "--format", "table"), 2, "a table is for the screen"),
    ],
)
def test_refusals_say_what_would_be_right_and_write_nothing(
    office_url: str, tmp_path: Path, args: tuple[str, ...], rc: int, message: str
) -> None:
    target = tmp_path / "out.file"
    r = casework(office_url, "report", *args, "-o", str(target))
    assert r.rc == rc, r.out + r.err
    assert message in r.err
    assert r.err.startswith("error: ") and r.out == ""
    assert list(tmp_path.iterdir()) == []  # no file, no half-written temporary either


def test_xlsx_without_a_file_and_a_missing_folder_are_refused(office_url: str, tmp_path: Path) -> None:
    r = casework(office_url, "report", "archives", "--format", "xlsx")
    assert r.rc == 2 and "give -o FILE.xlsx" in r.err and r.out == ""
    missing = tmp_path / "no-such-folder" / "a.csv"
    r = casework(office_url, "report", "archives", "--format", "csv", "-o", str(missing))
    assert r.rc == 2 and "does not exist" in r.err
    assert list(tmp_path.iterdir()) == []


def test_the_json_report_is_the_same_on_both_backends(db_url: str) -> None:
    office = build_office(db_url)
    office.engine.dispose()
    r = casework(db_url, "report", "exit-rate", "--year", "2026", "--format", "json")
    assert r.rc == 0, r.err
    rows = {row["county"]: row for row in json.loads(r.out)["rows"]}
    assert (rows["合计"]["on_file"], rows["合计"]["rate"], rows["漳浦县"]["rate"]) == (3, "0.3333", "—")
