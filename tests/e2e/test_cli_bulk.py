"""``casework case import`` and ``casework case fire-many``, as a clerk types them."""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

from casework.synthetic import SyntheticPeople
from tests.e2e.conftest import Seeded
from tests.e2e.test_cli import casework, ok, ok_json, refused, snapshot, usage_error

WF = "poverty_archive"
HEADER = [
    "申请人姓名",
    "公民身份号码",
    "county",
    "家庭人口",
    "household_type",
    "cause",
    "income_per_capita",
    "materials",
]


def households(n: int, seed: int = 3) -> list[list[str]]:
    people = SyntheticPeople(seed)
    rows = []
    for _ in range(n):
        h = people.household()
        rows.append(
            [
                h["applicant_name"],
                h["id_number"],
                "芗城区",
                str(h["household_size"]),
                "低保户",
                "因病",
                "850.50",
                "申请表、身份证、户口簿、收入证明",
            ]
        )
    return rows


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_import_a_csv_then_submit_them_all(seeded: Seeded, tmp_path: Path) -> None:
    url = seeded.url
    path = write_csv(tmp_path / "archives.csv", households(30))
    result = ok_json(casework(url, "case", "import", WF, str(path), "--as", "lin", "--json"))
    assert result["imported"] == 30 and result["skipped"] == []
    cases = ok_json(casework(url, "case", "list", "--json"))
    refs = [c["ref"] for c in cases]
    assert refs == [f"ZZ-{refs[0][3:7]}-{n:06d}" for n in range(1, 31)]
    assert {c["state"] for c in cases} == {"apply"}
    refs_file = tmp_path / "refs.txt"
    refs_file.write_text("\n".join(refs[:20]) + "\n")
    out = ok(casework(url, "case", "fire-many", "submit", "--refs-file", str(refs_file), refs[20], "--as", "lin"))
    assert "submit: 21 fired, 0 refused" in out
    states = {c["ref"]: c["state"] for c in ok_json(casework(url, "case", "list", "--json"))}
    assert [states[r] for r in refs[:21]] == ["review"] * 21 and states[refs[21]] == "apply"
    assert "intact" in ok(casework(url, "audit", "verify"))


def test_a_file_with_bad_rows_imports_nothing_and_lists_each_line(seeded: Seeded, tmp_path: Path) -> None:
    url = seeded.url
    rows = households(4)
    rows[1][1] = "350602199902301234"  # 30 February
    rows[3][3] = "四"  # not a number
    path = write_csv(tmp_path / "bad.csv", rows)
    r = casework(url, "case", "import", WF, str(path), "--as", "lin")
    assert r.rc == 1 and r.out == ""
    assert "2 of 4 rows are invalid, so nothing was imported" in r.err
    assert "line 3: id_number" in r.err and "line 5: household_size" in r.err
    assert "--skip-invalid" in r.err
    assert ok_json(casework(url, "case", "list", "--json")) == []
    r = casework(url, "case", "import", WF, str(path), "--as", "lin", "--skip-invalid")
    assert r.rc == 0 and "imported 2 poverty_archive cases" in r.out
    assert "skipped line 3" in r.err and "skipped line 5" in r.err


def test_an_xlsx_with_labels_as_headers_imports_like_a_csv(seeded: Seeded, tmp_path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in households(5, seed=8):
        row[3] = int(row[3])  # a spreadsheet stores numbers as numbers
        sheet.append(row)
    sheet.append([None] * len(HEADER))  # a trailing empty row is not a record
    path = tmp_path / "archives.xlsx"
    book.save(path)
    result = ok_json(casework(seeded.url, "case", "import", WF, str(path), "--as", "lin", "--json"))
    assert result["imported"] == 5
    case = ok_json(casework(seeded.url, "case", "show", result["first_ref"], "--json"))
    assert case["data"]["household_size"] == int(households(5, seed=8)[0][3])


def test_import_refusals_are_clear_and_change_nothing(sqlite_seeded: Seeded, tmp_path: Path) -> None:
    url = sqlite_seeded.url
    good = write_csv(tmp_path / "good.csv", households(2))
    unknown = write_csv(tmp_path / "unknown.csv", households(1), header=[*HEADER[:-1], "materialz"])
    before = snapshot(url, [])
    usage_error(casework(url, "case", "import", WF, str(unknown), "--as", "lin"), "line 1", "materialz", "materials")
    usage_error(casework(url, "case", "import", WF, str(tmp_path / "missing.csv"), "--as", "lin"), "no such file")
    (tmp_path / "x.txt").write_text("a,b\n")
    usage_error(casework(url, "case", "import", WF, str(tmp_path / "x.txt"), "--as", "lin"), ".csv", ".xlsx")
    (tmp_path / "latin1.csv").write_bytes("申请人姓名\n".encode("gb18030"))
    usage_error(casework(url, "case", "import", WF, str(tmp_path / "latin1.csv"), "--as", "lin"), "UTF-8")
    refused(casework(url, "case", "import", WF, str(good), "--as", "su"), "may not open")
    refused(casework(url, "case", "import", WF, str(good), "--as", "nobody"), "nobody")
    usage_error(casework(url, "case", "import", WF, str(good), "--as", "lin", "--batch", "0"), "--batch")
    assert snapshot(url, []) == before


def test_fire_many_lists_refused_cases_and_exits_1(seeded: Seeded, tmp_path: Path) -> None:
    url = seeded.url
    path = write_csv(tmp_path / "a.csv", households(3))
    ok_json(casework(url, "case", "import", WF, str(path), "--as", "ye", "--json"))
    refs = [c["ref"] for c in ok_json(casework(url, "case", "list", "--json"))]
    ok(casework(url, "case", "fire-many", "submit", *refs, "--as", "ye"))
    r = casework(url, "case", "fire-many", "pass_review", *refs, "ZZ-2026-999999", "--as", "ye", "--json")
    assert r.rc == 1
    result = ok_json(casework(url, "case", "fire-many", "pass_review", refs[0], "--as", "wu", "--json"))
    assert result["fired"] == [refs[0]]
    usage_error(casework(url, "case", "fire-many", "submit", "--as", "lin"), "no cases given")
